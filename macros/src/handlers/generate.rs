//! Writes the code `#[kinesis::handlers]` generates from a checked [`Model`].

use proc_macro2::TokenStream;
use quote::{quote, quote_spanned};
use syn::spanned::Spanned;

use super::{is_option, Method, Model, Ret};
use crate::util::type_string;

impl Method {
    /// The type of the reply: `T` of `Result<T, E>`, the value, or `()`.
    fn reply_ty(&self) -> TokenStream {
        match &self.ret {
            Ret::Unit => quote!(()),
            Ret::Value(t) | Ret::Result(t, _) => quote!(#t),
        }
    }

    /// `call` (the method call, awaited if async) as a `kinesis::Result<Reply>`.
    fn convert(&self, call: TokenStream) -> TokenStream {
        let call = if self.is_async { quote!(#call.await) } else { call };
        match &self.ret {
            Ret::Unit => quote!({
                #call;
                ::core::result::Result::<(), ::kinesis::Error>::Ok(())
            }),
            Ret::Value(_) => quote!(::core::result::Result::<_, ::kinesis::Error>::Ok(#call)),
            Ret::Result(_, err) => {
                // Naming the error type, when written, reports an error type
                // that converts to no `kinesis::Error` at that type.
                let convert = match err {
                    Some(e) => quote_spanned!(e.span()=> __convert::<#e>),
                    None => quote!(__convert),
                };
                quote!(match #call {
                    ::core::result::Result::Ok(__v) => ::core::result::Result::<_, ::kinesis::Error>::Ok(__v),
                    ::core::result::Result::Err(__e) => ::core::result::Result::Err(
                        (&&__KinesisProbe::__new(&__e)).__kinesis_kind().#convert(__e),
                    ),
                })
            }
        }
    }

    /// The signature of the typed method on `Handle<C>`.
    fn typed_sig(&self) -> TokenStream {
        let ident = &self.ident;
        let params = self.args.iter().map(|a| {
            let (i, t) = (&a.ident, &a.ty);
            quote!(#i: #t)
        });
        let reply = self.reply_ty();
        quote! {
            fn #ident(&self #(, #params)*) -> impl ::core::future::Future<
                Output = ::kinesis::Result<#reply>
            > + ::core::marker::Send
        }
    }

    /// Parses the JSON arguments into `__a` (a map), checking names.
    fn parse_args(&self) -> TokenStream {
        let names = self.args.iter().map(|a| &a.name);
        if self.args.is_empty() {
            quote!(__kinesis_args(__method, __args, &[])?;)
        } else {
            quote!(let mut __a = __kinesis_args(__method, __args, &[#(#names),*])?;)
        }
    }

    /// One expression per argument taking it out of `__a`.
    fn arg_exprs(&self) -> Vec<TokenStream> {
        self.args
            .iter()
            .map(|a| {
                let (ty, name) = (&a.ty, &a.name);
                let f = quote_spanned!(ty.span()=> __kinesis_arg::<#ty>);
                quote!(#f(__method, &mut __a, #name)?)
            })
            .collect()
    }

    /// The body of the function writing the JSON Schema of the arguments.
    fn args_schema(&self) -> TokenStream {
        let value = quote!(::kinesis::__private::serde_json::Value);
        let inserts = self.args.iter().map(|a| {
            let (ty, name) = (&a.ty, &a.name);
            quote! {
                __properties.insert(
                    ::std::string::ToString::to_string(#name),
                    (&&__KinesisSchemaProbe::<#ty>(::core::marker::PhantomData))
                        .__kinesis_schema(__generator)
                        .to_value(),
                );
            }
        });
        let required: Vec<&String> =
            self.args.iter().filter(|a| !is_option(&a.ty)).map(|a| &a.name).collect();
        let required = (!required.is_empty()).then(|| {
            quote! {
                __schema.insert(
                    ::std::string::ToString::to_string("required"),
                    #value::Array(::std::vec![#(#value::from(#required)),*]),
                );
            }
        });
        quote! {
            let mut __properties = ::kinesis::__private::serde_json::Map::new();
            #(#inserts)*
            let mut __schema = ::kinesis::__private::serde_json::Map::new();
            __schema.insert(::std::string::ToString::to_string("type"), #value::from("object"));
            __schema.insert(
                ::std::string::ToString::to_string("properties"),
                #value::Object(__properties),
            );
            #required
            __schema.insert(
                ::std::string::ToString::to_string("additionalProperties"),
                #value::Bool(false),
            );
            ::kinesis::__private::schemars::Schema::from(__schema)
        }
    }

    fn reply_expr(&self) -> TokenStream {
        let reply = self.reply_ty();
        let f = quote_spanned!(self.ret_span=> __kinesis_reply::<#reply>);
        quote!(#f(__method, &__reply))
    }
}

pub(super) fn generate(m: &Model) -> TokenStream {
    let self_ty = &m.self_ty;
    let type_name = &m.type_name;
    let trait_ident = &m.trait_ident;

    let messages = m.methods.iter().filter(|x| x.mutating).map(|x| {
        let msg = &x.msg;
        let doc =
            format!("The message `#[kinesis::handlers]` generated for `{type_name}::{}`.", x.name);
        let fields = x.args.iter().map(|a| {
            let (i, t) = (&a.ident, &a.ty);
            quote!(pub #i: #t)
        });
        quote! {
            #[doc = #doc]
            #[doc(hidden)]
            #[allow(missing_docs, non_camel_case_types, unreachable_pub, private_interfaces)]
            pub struct #msg { #(#fields,)* }
        }
    });

    let trait_doc = format!(
        "Typed methods of `{type_name}` on `kinesis::Handle<{type_name}>` and on \
         `kinesis::remote::Remote<{type_name}>`, generated by `#[kinesis::handlers]`.\n\n\
         Bring this trait into scope to call them: mutating (`&mut self`) methods are sent \
         through the component's mailbox and resolve to the reply (as `Handle::ask` does); \
         read-only (`&self`) methods run on the latest snapshot without entering the mailbox. \
         On a `Remote`, each call is one request to the runtime that holds the component, with \
         the arguments and the reply as JSON."
    );
    let decls = m.methods.iter().map(|x| {
        let docs = &x.doc_attrs;
        let how = if x.mutating {
            format!(
                "Calls `{type_name}::{}` through the component's mailbox and waits for the \
                 reply (see `Handle::ask`).",
                x.name
            )
        } else {
            format!("Calls `{type_name}::{}` on the latest snapshot of the component.", x.name)
        };
        let sig = x.typed_sig();
        let sep = (!docs.is_empty()).then(|| quote!(#[doc = ""]));
        quote! {
            #(#docs)*
            #sep
            #[doc = #how]
            #sig;
        }
    });

    let handler_impls = m.methods.iter().filter(|x| x.mutating).map(|x| {
        let (msg, ident) = (&x.msg, &x.ident);
        let fields = x.args.iter().map(|a| &a.ident);
        let ctx = x.takes_ctx.then(|| quote!(__ctx));
        let call = quote!(self.#ident(#(__msg.#fields,)* #ctx));
        let body = x.convert(call);
        let reply = x.reply_ty();
        quote! {
            impl ::kinesis::Handler<#msg> for #self_ty {
                type Reply = #reply;
                async fn handle(
                    &mut self,
                    __msg: #msg,
                    __ctx: &mut ::kinesis::Context<Self>,
                ) -> ::kinesis::Result<#reply> {
                    #body
                }
            }
        }
    });

    let typed_impls = m.methods.iter().map(|x| {
        let sig = x.typed_sig();
        let ident = &x.ident;
        let params = x.args.iter().map(|a| &a.ident);
        if x.mutating {
            let msg = &x.msg;
            quote! {
                #sig {
                    ::kinesis::Handle::ask(self, #msg { #(#params),* })
                }
            }
        } else {
            let body = x.convert(quote!(__kinesis_snapshot.state.#ident(#(#params),*)));
            quote! {
                #sig {
                    async move {
                        let __kinesis_snapshot = ::kinesis::Handle::snapshot(self);
                        #body
                    }
                }
            }
        }
    });

    // The same trait on `Remote<C>`: arguments to a JSON object, the reply
    // back from JSON, through the remote's transport.
    let remote_impls = m.methods.iter().map(|x| {
        let sig = x.typed_sig();
        let name = &x.name;
        let reply = x.reply_ty();
        let args = x.args.iter().map(|a| {
            let (i, n) = (&a.ident, &a.name);
            quote!((#n, (&&__KinesisSendProbe(&#i)).__kinesis_to_json(#name, #n)))
        });
        quote! {
            #sig {
                let __call = ::kinesis::remote::Remote::__call(
                    self,
                    #name,
                    __kinesis_remote_args(::std::vec![#(#args),*]),
                );
                async move {
                    let __value = __call.await?;
                    (&&__KinesisReceiveProbe::<#reply>(::core::marker::PhantomData))
                        .__kinesis_from_json(#name, __value)
                }
            }
        }
    });

    let mut_arms = m.methods.iter().filter(|x| x.mutating).map(|x| {
        let (name, msg) = (&x.name, &x.msg);
        let parse = x.parse_args();
        let fields = x.args.iter().map(|a| &a.ident);
        let exprs = x.arg_exprs();
        let reply = x.reply_expr();
        quote! {
            #name => {
                #parse
                let __msg = #msg { #(#fields: #exprs,)* };
                let __reply =
                    <#self_ty as ::kinesis::Handler<#msg>>::handle(__state, __msg, __ctx).await?;
                #reply
            }
        }
    });
    let ref_arms = m.methods.iter().filter(|x| !x.mutating).map(|x| {
        let (name, ident) = (&x.name, &x.ident);
        let parse = x.parse_args();
        let exprs = x.arg_exprs();
        let call = x.convert(quote!(__state.#ident(#(#exprs),*)));
        let reply = x.reply_expr();
        quote! {
            #name => {
                #parse
                let __reply = #call?;
                #reply
            }
        }
    });
    let read_only: Vec<&String> =
        m.methods.iter().filter(|x| !x.mutating).map(|x| &x.name).collect();
    let mutating: Vec<&String> = m.methods.iter().filter(|x| x.mutating).map(|x| &x.name).collect();
    let wrong_mut = (!read_only.is_empty()).then(|| {
        quote! {
            #(#read_only)|* => ::core::result::Result::Err(::kinesis::Error::Invalid(
                ::std::format!(
                    "method `{}` of `{}` is read-only: it runs on a snapshot, not through the mailbox",
                    __method, #type_name
                )
            )),
        }
    });
    let wrong_ref = (!mutating.is_empty()).then(|| {
        quote! {
            #(#mutating)|* => ::core::result::Result::Err(::kinesis::Error::Invalid(
                ::std::format!(
                    "method `{}` of `{}` changes the state: it runs through the mailbox, not on a snapshot",
                    __method, #type_name
                )
            )),
        }
    });

    let schema = quote!(::kinesis::__private::schemars::Schema);
    let generator = quote!(::kinesis::__private::schemars::SchemaGenerator);
    let schema_fns = m.methods.iter().enumerate().map(|(i, x)| {
        let args_fn = quote::format_ident!("__kinesis_args_schema_{}", i);
        let reply_fn = quote::format_ident!("__kinesis_reply_schema_{}", i);
        let args_body = x.args_schema();
        let reply = x.reply_ty();
        quote! {
            fn #args_fn(__generator: &mut #generator) -> #schema {
                #args_body
            }
            fn #reply_fn(__generator: &mut #generator) -> #schema {
                (&&__KinesisSchemaProbe::<#reply>(::core::marker::PhantomData))
                    .__kinesis_schema(__generator)
            }
        }
    });

    let infos = m.methods.iter().enumerate().map(|(i, x)| {
        let args_fn = quote::format_ident!("__kinesis_args_schema_{}", i);
        let reply_fn = quote::format_ident!("__kinesis_reply_schema_{}", i);
        let (name, mutating, returns, doc) = (&x.name, x.mutating, &x.returns, &x.doc);
        let args = x.args.iter().map(|a| {
            let (n, t) = (&a.name, type_string(&a.ty));
            quote!(::kinesis::methods::ArgInfo { name: #n, ty: #t })
        });
        quote! {
            ::kinesis::methods::MethodInfo {
                name: #name,
                mutating: #mutating,
                args: &[#(#args),*],
                returns: #returns,
                doc: #doc,
                args_schema: #args_fn,
                reply_schema: #reply_fn,
            }
        }
    });

    let value = quote!(::kinesis::__private::serde_json::Value);
    let map = quote!(::kinesis::__private::serde_json::Map<::std::string::String, #value>);
    let boxed = quote!(::kinesis::__private::futures::future::BoxFuture);

    quote! {
        #[doc = #trait_doc]
        #[allow(private_interfaces, private_bounds, unreachable_pub, clippy::too_many_arguments)]
        pub trait #trait_ident {
            #(#decls)*
        }

        #(#messages)*

        #[allow(
            dead_code,
            non_upper_case_globals,
            non_camel_case_types,
            private_interfaces,
            clippy::all,
            clippy::pedantic,
            clippy::nursery
        )]
        const _: () = {
            #(#handler_impls)*

            #[allow(clippy::manual_async_fn)]
            impl #trait_ident for ::kinesis::Handle<#self_ty> {
                #(#typed_impls)*
            }

            #[allow(clippy::manual_async_fn)]
            impl #trait_ident for ::kinesis::remote::Remote<#self_ty> {
                #(#remote_impls)*
            }

            /// The JSON object of named arguments of a remote call.
            fn __kinesis_remote_args(
                args: ::std::vec::Vec<(&'static str, ::kinesis::Result<#value>)>,
            ) -> ::kinesis::Result<#value> {
                let mut __map = ::kinesis::__private::serde_json::Map::new();
                for (name, value) in args {
                    __map.insert(::std::string::ToString::to_string(name), value?);
                }
                ::core::result::Result::Ok(#value::Object(__map))
            }

            // Arguments and replies of remote calls by autoref
            // specialisation: a type that implements `Serialize` (arguments)
            // or `Deserialize` (replies) crosses the transport; any other
            // one makes the call fail with an error that names it, so that a
            // component whose types are not serde-ready still compiles.
            struct __KinesisSendProbe<'a, T>(&'a T);
            trait __KinesisSendJson {
                fn __kinesis_to_json(self, method: &str, arg: &str) -> ::kinesis::Result<#value>;
            }
            impl<T: ::kinesis::__private::serde::Serialize> __KinesisSendJson for &&__KinesisSendProbe<'_, T> {
                fn __kinesis_to_json(self, method: &str, arg: &str) -> ::kinesis::Result<#value> {
                    ::kinesis::__private::serde_json::to_value(self.0).map_err(|e| {
                        ::kinesis::Error::Invalid(::std::format!(
                            "argument `{arg}` of method `{method}` does not serialise: {e}"
                        ))
                    })
                }
            }
            trait __KinesisCannotSend {
                fn __kinesis_to_json(self, method: &str, arg: &str) -> ::kinesis::Result<#value>;
            }
            impl<T> __KinesisCannotSend for &__KinesisSendProbe<'_, T> {
                fn __kinesis_to_json(self, method: &str, arg: &str) -> ::kinesis::Result<#value> {
                    ::core::result::Result::Err(::kinesis::Error::Invalid(::std::format!(
                        "argument `{arg}` of method `{method}` is a `{}`, which does not \
                         implement `serde::Serialize`: it cannot be sent to a remote component",
                        ::std::any::type_name::<T>()
                    )))
                }
            }
            struct __KinesisReceiveProbe<T>(::core::marker::PhantomData<T>);
            trait __KinesisReceiveJson<T> {
                fn __kinesis_from_json(self, method: &str, value: #value) -> ::kinesis::Result<T>;
            }
            impl<T: ::kinesis::__private::serde::de::DeserializeOwned> __KinesisReceiveJson<T>
                for &&__KinesisReceiveProbe<T>
            {
                fn __kinesis_from_json(self, method: &str, value: #value) -> ::kinesis::Result<T> {
                    ::kinesis::__private::serde_json::from_value(value).map_err(|e| {
                        ::kinesis::Error::Invalid(::std::format!(
                            "the reply of method `{method}` does not fit `{}`: {e}",
                            ::std::any::type_name::<T>()
                        ))
                    })
                }
            }
            trait __KinesisCannotReceive<T> {
                fn __kinesis_from_json(self, method: &str, value: #value) -> ::kinesis::Result<T>;
            }
            impl<T> __KinesisCannotReceive<T> for &__KinesisReceiveProbe<T> {
                fn __kinesis_from_json(self, method: &str, _: #value) -> ::kinesis::Result<T> {
                    ::core::result::Result::Err(::kinesis::Error::Invalid(::std::format!(
                        "the reply of method `{method}` is a `{}`, which does not implement \
                         `serde::Deserialize`: it cannot be received from a remote component",
                        ::std::any::type_name::<T>()
                    )))
                }
            }

            fn __kinesis_type_id() -> ::std::any::TypeId {
                ::std::any::TypeId::of::<#self_ty>()
            }

            fn __kinesis_call_mut<'a>(
                __state: &'a mut (dyn ::core::any::Any + ::core::marker::Send),
                __ctx: &'a mut (dyn ::core::any::Any + ::core::marker::Send),
                __method: &'a str,
                __args: #value,
            ) -> #boxed<'a, ::kinesis::Result<#value>> {
                ::std::boxed::Box::pin(__kinesis_call_mut_async(__state, __ctx, __method, __args))
            }

            async fn __kinesis_call_mut_async(
                __state: &mut (dyn ::core::any::Any + ::core::marker::Send),
                __ctx: &mut (dyn ::core::any::Any + ::core::marker::Send),
                __method: &str,
                __args: #value,
            ) -> ::kinesis::Result<#value> {
                {
                    let __state = __state.downcast_mut::<#self_ty>().ok_or_else(|| {
                        ::kinesis::Error::Invalid(::std::format!(
                            "the method table of `{}` was called with another component type",
                            #type_name
                        ))
                    })?;
                    let __ctx = __ctx
                        .downcast_mut::<::kinesis::Context<#self_ty>>()
                        .ok_or_else(|| {
                            ::kinesis::Error::Invalid(::std::format!(
                                "the method table of `{}` was called with another context type",
                                #type_name
                            ))
                        })?;
                    match __method {
                        #(#mut_arms)*
                        #wrong_mut
                        _ => ::core::result::Result::Err(::kinesis::Error::NotFound(
                            ::std::format!("`{}` has no method `{}`", #type_name, __method)
                        )),
                    }
                }
            }

            fn __kinesis_call_ref<'a>(
                __state: &'a (dyn ::core::any::Any + ::core::marker::Send + ::core::marker::Sync),
                __method: &'a str,
                __args: #value,
            ) -> #boxed<'a, ::kinesis::Result<#value>> {
                ::std::boxed::Box::pin(__kinesis_call_ref_async(__state, __method, __args))
            }

            async fn __kinesis_call_ref_async(
                __state: &(dyn ::core::any::Any + ::core::marker::Send + ::core::marker::Sync),
                __method: &str,
                __args: #value,
            ) -> ::kinesis::Result<#value> {
                {
                    let __state = __state.downcast_ref::<#self_ty>().ok_or_else(|| {
                        ::kinesis::Error::Invalid(::std::format!(
                            "the method table of `{}` was called with another component type",
                            #type_name
                        ))
                    })?;
                    match __method {
                        #(#ref_arms)*
                        #wrong_ref
                        _ => ::core::result::Result::Err(::kinesis::Error::NotFound(
                            ::std::format!("`{}` has no method `{}`", #type_name, __method)
                        )),
                    }
                }
            }

            /// Checks the argument names of a call; `null` means no arguments.
            fn __kinesis_args(
                method: &str,
                args: #value,
                names: &[&str],
            ) -> ::kinesis::Result<#map> {
                match args {
                    #value::Null => ::core::result::Result::Ok(::kinesis::__private::serde_json::Map::new()),
                    #value::Object(map) => {
                        if let ::core::option::Option::Some(unknown) =
                            map.keys().find(|k| !names.contains(&k.as_str()))
                        {
                            let message = if names.is_empty() {
                                ::std::format!(
                                    "method `{method}` takes no arguments, got `{unknown}`"
                                )
                            } else {
                                let expected: ::std::vec::Vec<::std::string::String> =
                                    names.iter().map(|n| ::std::format!("`{n}`")).collect();
                                ::std::format!(
                                    "method `{method}` has no argument `{unknown}`; its arguments are {}",
                                    expected.join(", ")
                                )
                            };
                            return ::core::result::Result::Err(::kinesis::Error::Invalid(message));
                        }
                        ::core::result::Result::Ok(map)
                    }
                    other => {
                        let kind = match other {
                            #value::Array(_) => "an array",
                            #value::String(_) => "a string",
                            #value::Number(_) => "a number",
                            _ => "a boolean",
                        };
                        ::core::result::Result::Err(::kinesis::Error::Invalid(::std::format!(
                            "the arguments of method `{method}` must be a JSON object of named \
                             arguments, not {kind}"
                        )))
                    }
                }
            }

            /// Takes one argument out of the map; a missing one is read as
            /// `null`, so that `Option` arguments may be left out.
            #[diagnostic::on_unimplemented(
                message = "the argument type `{Self}` of a `#[kinesis::handlers]` method must implement `serde::Deserialize`",
                label = "not deserialisable from JSON",
                note = "arguments are deserialised from the JSON object of named arguments"
            )]
            trait __KinesisArgument: ::kinesis::__private::serde::de::DeserializeOwned {}
            impl<T: ::kinesis::__private::serde::de::DeserializeOwned> __KinesisArgument for T {}

            #[diagnostic::on_unimplemented(
                message = "the reply type `{Self}` of a `#[kinesis::handlers]` method must implement `serde::Serialize`",
                label = "not serialisable to JSON",
                note = "replies are serialised to JSON for `call_json` and the HTTP add-on"
            )]
            trait __KinesisReply: ::kinesis::__private::serde::Serialize {}
            impl<T: ::kinesis::__private::serde::Serialize> __KinesisReply for T {}

            fn __kinesis_arg<T: __KinesisArgument>(
                method: &str,
                args: &mut #map,
                name: &str,
            ) -> ::kinesis::Result<T> {
                match args.remove(name) {
                    ::core::option::Option::Some(v) => {
                        ::kinesis::__private::serde_json::from_value(v).map_err(|e| {
                            ::kinesis::Error::Invalid(::std::format!("argument `{name}`: {e}"))
                        })
                    }
                    ::core::option::Option::None => {
                        ::kinesis::__private::serde_json::from_value(#value::Null).map_err(|_| {
                            ::kinesis::Error::Invalid(::std::format!(
                                "missing argument `{name}` of method `{method}`"
                            ))
                        })
                    }
                }
            }

            fn __kinesis_reply<T: __KinesisReply>(
                method: &str,
                reply: &T,
            ) -> ::kinesis::Result<#value> {
                ::kinesis::__private::serde_json::to_value(reply).map_err(|e| {
                    ::kinesis::Error::Handler(::std::format!(
                        "the reply of method `{method}` does not serialise: {e}"
                    ))
                })
            }

            // Error conversion by autoref specialisation: an error type that
            // is `Into<kinesis::Error>` converts with `into`, any other one
            // that is `Display` becomes `Error::Handler(e.to_string())`.
            struct __KinesisProbe<E>(::core::marker::PhantomData<E>);
            impl<E> __KinesisProbe<E> {
                fn __new(_: &E) -> Self {
                    __KinesisProbe(::core::marker::PhantomData)
                }
            }
            struct __KinesisIntoTag;
            struct __KinesisDisplayTag;
            trait __KinesisIntoKind {
                fn __kinesis_kind(self) -> __KinesisIntoTag;
            }
            impl<E: ::core::convert::Into<::kinesis::Error>> __KinesisIntoKind for &&__KinesisProbe<E> {
                fn __kinesis_kind(self) -> __KinesisIntoTag {
                    __KinesisIntoTag
                }
            }
            trait __KinesisDisplayKind {
                fn __kinesis_kind(self) -> __KinesisDisplayTag;
            }
            impl<E> __KinesisDisplayKind for &__KinesisProbe<E> {
                fn __kinesis_kind(self) -> __KinesisDisplayTag {
                    __KinesisDisplayTag
                }
            }
            impl __KinesisIntoTag {
                fn __convert<E: ::core::convert::Into<::kinesis::Error>>(self, e: E) -> ::kinesis::Error {
                    e.into()
                }
            }
            #[diagnostic::on_unimplemented(
                message = "the error type `{Self}` of a `#[kinesis::handlers]` method must implement `Into<kinesis::Error>` or `Display`",
                label = "returned by a `#[kinesis::handlers]` method"
            )]
            trait __KinesisHandlerError {
                fn __kinesis_message(&self) -> ::std::string::String;
            }
            impl<E: ::core::fmt::Display> __KinesisHandlerError for E {
                fn __kinesis_message(&self) -> ::std::string::String {
                    ::std::string::ToString::to_string(self)
                }
            }
            impl __KinesisDisplayTag {
                fn __convert<E: __KinesisHandlerError>(self, e: E) -> ::kinesis::Error {
                    ::kinesis::Error::Handler(e.__kinesis_message())
                }
            }

            // JSON Schemas by autoref specialisation: a type that implements
            // `JsonSchema` is described by its schema, any other one by `true`.
            struct __KinesisSchemaProbe<T: ?::core::marker::Sized>(::core::marker::PhantomData<T>);
            trait __KinesisHasSchema {
                fn __kinesis_schema(self, generator: &mut #generator) -> #schema;
                fn __kinesis_state_schema(
                    self,
                    generator: &mut #generator,
                ) -> ::core::option::Option<#schema>;
            }
            impl<T: ?::core::marker::Sized + ::kinesis::__private::schemars::JsonSchema>
                __KinesisHasSchema for &&__KinesisSchemaProbe<T>
            {
                fn __kinesis_schema(self, generator: &mut #generator) -> #schema {
                    generator.subschema_for::<T>()
                }
                fn __kinesis_state_schema(
                    self,
                    generator: &mut #generator,
                ) -> ::core::option::Option<#schema> {
                    ::core::option::Option::Some(
                        <T as ::kinesis::__private::schemars::JsonSchema>::json_schema(generator),
                    )
                }
            }
            trait __KinesisNoSchema {
                fn __kinesis_schema(self, generator: &mut #generator) -> #schema;
                fn __kinesis_state_schema(
                    self,
                    generator: &mut #generator,
                ) -> ::core::option::Option<#schema>;
            }
            impl<T: ?::core::marker::Sized> __KinesisNoSchema for &__KinesisSchemaProbe<T> {
                fn __kinesis_schema(self, _: &mut #generator) -> #schema {
                    #schema::from(true)
                }
                fn __kinesis_state_schema(
                    self,
                    _: &mut #generator,
                ) -> ::core::option::Option<#schema> {
                    ::core::option::Option::None
                }
            }

            #(#schema_fns)*

            fn __kinesis_state_schema(
                __generator: &mut #generator,
            ) -> ::core::option::Option<#schema> {
                (&&__KinesisSchemaProbe::<#self_ty>(::core::marker::PhantomData))
                    .__kinesis_state_schema(__generator)
            }

            ::kinesis::__private::inventory::submit! {
                ::kinesis::methods::MethodTable {
                    type_id: __kinesis_type_id,
                    methods: &[#(#infos),*],
                    call_mut: __kinesis_call_mut,
                    call_ref: __kinesis_call_ref,
                    state_schema: __kinesis_state_schema,
                }
            }
        };
    }
}
