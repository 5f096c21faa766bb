//! `#[kinesis::handlers]`: messages, `Handler` impls, typed handle methods and
//! the JSON method table from the `pub` methods of an inherent `impl` block.
//!
//! This module reads the `impl` block into a [`Model`] and checks it;
//! `generate` writes the code.

mod generate;

use std::collections::HashSet;

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote};
use syn::ext::IdentExt;
use syn::spanned::Spanned;
use syn::visit::Visit;
use syn::visit_mut::VisitMut;
use syn::{
    Attribute, FnArg, Ident, ImplItem, ImplItemFn, ItemImpl, Pat, PathArguments, ReturnType, Type,
    Visibility,
};

use crate::util::{
    camel_case, doc_attrs, doc_string, type_string, Errors, OwnedTypeCheck, ReplaceSelf,
};

/// The inherent methods of `kinesis::Handle`. A generated typed method with one
/// of these names would be shadowed by the inherent one (inherent methods win
/// method resolution), so `counter.restart()` would silently restart the
/// component instead of calling `Counter::restart`. Such names are refused.
const HANDLE_METHODS: &[&str] = &[
    "with_timeout",
    "name",
    "uri",
    "stage",
    "state",
    "snapshot",
    "etag",
    "same_component",
    "ask",
    "tell",
    "batch",
    "replace",
    "control",
    "shutdown",
    "restart",
    "wait_for_stage",
    "subscribe",
    "on_change",
    "remove_callback",
];

/// What a method returns.
enum Ret {
    /// Nothing, or `()`.
    Unit,
    /// A plain value.
    Value(Type),
    /// `Result<T, E>` (any path ending in `Result`): the `T`, and the `E`
    /// when written out (not with an alias such as `kinesis::Result<T>`).
    Result(Type, Option<Box<Type>>),
}

struct Arg {
    ident: Ident,
    name: String,
    /// With `Self` replaced by the component type.
    ty: Type,
}

struct Method {
    ident: Ident,
    name: String,
    mutating: bool,
    is_async: bool,
    args: Vec<Arg>,
    takes_ctx: bool,
    ret: Ret,
    /// The return type as written (`Self` replaced), for the table.
    returns: String,
    ret_span: Span,
    doc: String,
    doc_attrs: Vec<Attribute>,
    /// The message struct (mutating methods only).
    msg: Ident,
}

struct Model {
    self_ty: Type,
    type_name: String,
    trait_ident: Ident,
    methods: Vec<Method>,
}

/// Expands the attribute. The `impl` block is always emitted, so errors in
/// the macro do not cascade into "method not found" errors.
///
/// Its only change: the exposed (`pub`) methods get
/// `#[allow(unreachable_pub)]`, because here `pub` marks a method as a
/// message, whether or not the component type is reachable from outside.
pub(crate) fn expand(attr: TokenStream, mut item: ItemImpl) -> TokenStream {
    match analyse(attr, &item) {
        Ok(model) => {
            let generated = generate::generate(&model);
            for it in &mut item.items {
                if let ImplItem::Fn(f) = it {
                    if matches!(f.vis, Visibility::Public(_)) {
                        f.attrs.push(syn::parse_quote!(#[allow(unreachable_pub)]));
                    }
                }
            }
            quote!(#item #generated)
        }
        Err(e) => {
            let e = e.to_compile_error();
            quote!(#item #e)
        }
    }
}

fn analyse(attr: TokenStream, item: &ItemImpl) -> syn::Result<Model> {
    let mut errors = Errors::default();
    if !attr.is_empty() {
        errors.at(attr, "`#[kinesis::handlers]` takes no arguments");
    }
    if let Some((_, path, _)) = &item.trait_ {
        return Err(syn::Error::new_spanned(
            path,
            "`#[kinesis::handlers]` goes on an inherent impl block (`impl Counter { .. }`), \
             not on a trait impl",
        ));
    }
    if !item.generics.params.is_empty() || item.generics.where_clause.is_some() {
        return Err(syn::Error::new_spanned(
            &item.generics,
            "`#[kinesis::handlers]` does not support generic impl blocks: the method table is \
             registered for one concrete component type",
        ));
    }
    let type_ident = match &*item.self_ty {
        Type::Path(p) if p.qself.is_none() => {
            let last = p.path.segments.last().expect("a path has a segment");
            if !matches!(last.arguments, PathArguments::None) {
                return Err(syn::Error::new_spanned(
                    &last.arguments,
                    "`#[kinesis::handlers]` does not support generic component types: the \
                     method table is registered for one concrete type",
                ));
            }
            last.ident.unraw()
        }
        other => return Err(syn::Error::new_spanned(
            other,
            "`#[kinesis::handlers]` expects the name of a component type: `impl Counter { .. }`",
        )),
    };
    let self_ty = (*item.self_ty).clone();
    let mut methods: Vec<Method> = Vec::new();
    let mut names = HashSet::new();
    let mut messages = HashSet::new();
    for it in &item.items {
        let ImplItem::Fn(f) = it else { continue };
        if !matches!(f.vis, Visibility::Public(_)) {
            continue;
        }
        let Some(m) = method(f, &self_ty, &type_ident, &mut errors) else {
            continue;
        };
        if !names.insert(m.name.clone()) {
            errors.at(&f.sig.ident, format!("duplicate method name `{}`", m.name));
            continue;
        }
        if m.mutating && !messages.insert(m.msg.to_string()) {
            errors.at(
                &f.sig.ident,
                format!(
                    "method `{}` would generate the message type `{}`, which an earlier \
                     method already generates; rename one of them",
                    m.name, m.msg
                ),
            );
            continue;
        }
        methods.push(m);
    }
    errors.finish()?;
    Ok(Model {
        type_name: type_string(&self_ty),
        trait_ident: format_ident!("{}Handle", type_ident, span = type_ident.span()),
        self_ty,
        methods,
    })
}

/// `Some(is_mut)` if `ty` is a reference to a path ending in `Context`.
fn context_param(ty: &Type) -> Option<bool> {
    let Type::Reference(r) = ty else { return None };
    let Type::Path(p) = &*r.elem else { return None };
    let last = p.path.segments.last()?;
    (last.ident == "Context").then_some(r.mutability.is_some())
}

fn method(f: &ImplItemFn, self_ty: &Type, type_ident: &Ident, all: &mut Errors) -> Option<Method> {
    let mut errors = Errors::default();
    let sig = &f.sig;
    let ident = &sig.ident;
    let name = ident.unraw().to_string();

    if let Some(cfg) =
        f.attrs.iter().find(|a| a.path().is_ident("cfg") || a.path().is_ident("cfg_attr"))
    {
        errors.at(
            cfg,
            "`#[cfg]` on a `#[kinesis::handlers]` method is not supported; put conditional \
             methods in their own `#[cfg]`-gated `#[kinesis::handlers]` impl block",
        );
    }
    if name.starts_with('_') {
        errors.at(
            ident,
            format!(
                "method names starting with `_` are reserved for the runtime (`_control`, \
                 `_watch`); rename `{name}` or make it non-pub"
            ),
        );
    } else if HANDLE_METHODS.contains(&name.as_str()) {
        errors.at(
            ident,
            format!(
                "`{name}` is already a method of `kinesis::Handle`, which would shadow the \
                 generated typed method `{type_ident}Handle::{name}`; rename it"
            ),
        );
    }
    if let Some(u) = &sig.unsafety {
        errors.at(u, "handler methods cannot be `unsafe`: they are called by name from JSON");
    }
    if let Some(abi) = &sig.abi {
        errors.at(abi, "handler methods cannot have an `extern` ABI");
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        errors.at(
            &sig.generics,
            format!(
                "handler method `{name}` cannot be generic: its arguments are deserialised from \
                 JSON into concrete types; make it non-pub or give it concrete types"
            ),
        );
    }
    if let Some(v) = &sig.variadic {
        errors.at(v, "handler methods cannot be variadic");
    }

    let mutating = match sig.receiver() {
        None => {
            errors.at(
                ident,
                format!(
                    "`pub fn {name}` has no `self` receiver: every `pub` method of a \
                     `#[kinesis::handlers]` block becomes a message and needs `&self` or \
                     `&mut self`; move `{name}` to another `impl` block or make it non-pub"
                ),
            );
            false
        }
        Some(r) if r.colon_token.is_some() => {
            errors.at(r, "write the receiver as `&self` (read-only) or `&mut self` (mutating)");
            false
        }
        Some(r) if r.reference.is_none() => {
            errors.at(
                r,
                format!(
                    "`{name}` takes `self` by value; handler methods take `&mut self` (a message \
                     through the mailbox) or `&self` (read-only, on the latest snapshot)"
                ),
            );
            false
        }
        Some(r) => r.mutability.is_some(),
    };

    let typed: Vec<&syn::PatType> = sig
        .inputs
        .iter()
        .filter_map(|a| match a {
            FnArg::Typed(t) => Some(t),
            FnArg::Receiver(_) => None,
        })
        .collect();
    let mut args = Vec::new();
    let mut takes_ctx = false;
    for (i, pt) in typed.iter().enumerate() {
        if let Some(is_mut) = context_param(&pt.ty) {
            if i + 1 != typed.len() {
                errors.at(&pt.ty, "the `Context` must be the last parameter");
            } else if !is_mut {
                errors.at(&pt.ty, "take the context as `&mut Context<Self>`");
            } else if !mutating && sig.receiver().is_some_and(|r| r.reference.is_some()) {
                errors.at(
                    &pt.ty,
                    format!(
                        "read-only method `{name}` runs on a snapshot, outside the mailbox, and \
                         gets no `Context`; take `&mut self` to use the context"
                    ),
                );
            }
            takes_ctx = true;
            continue;
        }
        let arg_ident = match &*pt.pat {
            Pat::Ident(pi) if pi.by_ref.is_none() && pi.subpat.is_none() => pi.ident.clone(),
            other => {
                errors.at(
                    other,
                    "handler arguments must be plain names: they are the keys of the JSON \
                     object of arguments",
                );
                continue;
            }
        };
        let arg_name = arg_ident.unraw().to_string();
        OwnedTypeCheck { what: format!("argument `{arg_name}`"), errors: &mut errors }
            .visit_type(&pt.ty);
        let mut ty = (*pt.ty).clone();
        ReplaceSelf(self_ty).visit_type_mut(&mut ty);
        args.push(Arg { ident: arg_ident, name: arg_name, ty });
    }

    let (ret, returns, ret_span) = match &sig.output {
        ReturnType::Default => (Ret::Unit, "()".to_owned(), ident.span()),
        ReturnType::Type(_, ty) => {
            OwnedTypeCheck { what: "the return type".to_owned(), errors: &mut errors }
                .visit_type(ty);
            let mut ty = (**ty).clone();
            ReplaceSelf(self_ty).visit_type_mut(&mut ty);
            let returns = type_string(&ty);
            let span = ty.span();
            (classify(ty), returns, span)
        }
    };

    if let Err(e) = errors.finish() {
        all.push(e);
        return None;
    }
    Some(Method {
        msg: format_ident!("__{}{}", type_ident, camel_case(&name), span = ident.span()),
        ident: ident.clone(),
        name,
        mutating,
        is_async: sig.asyncness.is_some(),
        args,
        takes_ctx,
        ret,
        returns,
        ret_span,
        doc: doc_string(&f.attrs),
        doc_attrs: doc_attrs(&f.attrs).into_iter().cloned().collect(),
    })
}

/// Whether `ty` is written `Option<_>` (any path ending in `Option` with one
/// type argument): such an argument may be left out of the JSON object, since
/// a missing argument is read as `null`.
fn is_option(ty: &Type) -> bool {
    let Type::Path(p) = ty else { return false };
    if p.qself.is_some() {
        return false;
    }
    let last = p.path.segments.last().expect("a path has a segment");
    last.ident == "Option"
        && matches!(&last.arguments, PathArguments::AngleBracketed(a)
            if a.args.len() == 1 && matches!(a.args[0], syn::GenericArgument::Type(_)))
}

fn classify(ty: Type) -> Ret {
    match &ty {
        Type::Tuple(t) if t.elems.is_empty() => Ret::Unit,
        Type::Path(p) if p.qself.is_none() => {
            let last = p.path.segments.last().expect("a path has a segment");
            if last.ident == "Result" {
                if let PathArguments::AngleBracketed(a) = &last.arguments {
                    if let Some(syn::GenericArgument::Type(ok)) = a.args.first() {
                        let err = match a.args.iter().nth(1) {
                            Some(syn::GenericArgument::Type(e)) => Some(Box::new(e.clone())),
                            _ => None,
                        };
                        return Ret::Result(ok.clone(), err);
                    }
                }
            }
            Ret::Value(ty)
        }
        _ => Ret::Value(ty),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(item: ItemImpl) -> Model {
        analyse(TokenStream::new(), &item).unwrap_or_else(|e| panic!("{e}"))
    }

    fn error(item: ItemImpl) -> String {
        match analyse(TokenStream::new(), &item) {
            Ok(_) => panic!("expected an error"),
            Err(e) => e.into_iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n"),
        }
    }

    #[test]
    fn reads_methods_arguments_context_and_returns() {
        let m = model(syn::parse_quote! {
            impl Counter {
                /// Adds.
                pub async fn increment(&mut self, by: u64, ctx: &mut kinesis::Context<Self>) -> kinesis::Result<u64> { body() }
                pub fn set(&mut self, value: Option<Self>) {}
                pub fn total(&self) -> std::result::Result<Vec<u8>, String> { body() }
                pub fn unit(&self) -> () {}
                fn private(&self, s: &str) {}
                pub(crate) fn new() -> Self { body() }
            }
        });
        assert_eq!(m.trait_ident, "CounterHandle");
        assert_eq!(m.type_name, "Counter");
        let names: Vec<_> = m.methods.iter().map(|x| (x.name.as_str(), x.mutating)).collect();
        assert_eq!(names, [("increment", true), ("set", true), ("total", false), ("unit", false)]);

        let inc = &m.methods[0];
        assert!(inc.is_async && inc.takes_ctx);
        assert_eq!(inc.msg, "__CounterIncrement");
        assert_eq!(inc.args.len(), 1);
        assert_eq!(inc.returns, "kinesis::Result<u64>");
        assert!(matches!(&inc.ret, Ret::Result(ok, None) if type_string(ok) == "u64"));
        assert_eq!(inc.doc, "Adds.");

        let set = &m.methods[1];
        assert_eq!(type_string(&set.args[0].ty), "Option<Counter>", "Self is replaced");
        assert!(matches!(set.ret, Ret::Unit));
        assert!(matches!(&m.methods[2].ret, Ret::Result(_, Some(e)) if type_string(e) == "String"));
        assert!(matches!(m.methods[3].ret, Ret::Unit));
    }

    #[test]
    fn recognises_option_arguments() {
        for (ty, optional) in [
            (syn::parse_quote!(Option<u64>), true),
            (syn::parse_quote!(std::option::Option<Vec<u8>>), true),
            (syn::parse_quote!(u64), false),
            (syn::parse_quote!(Vec<Option<u8>>), false),
            (syn::parse_quote!(OptionSet), false),
            (syn::parse_quote!((Option<u8>,)), false),
        ] {
            let ty: Type = ty;
            assert_eq!(is_option(&ty), optional, "{}", type_string(&ty));
        }
    }

    #[test]
    fn reports_every_unsupported_signature() {
        let e = error(syn::parse_quote! {
            impl Counter {
                pub fn generic<T>(&mut self, t: T) {}
                pub fn by_value(self) {}
                pub fn no_receiver() {}
                pub fn borrowed(&mut self, s: &str) {}
                pub fn _watch(&self) {}
                pub fn state(&self) {}
                pub fn dup(&self) {}
                pub fn dup(&mut self) {}
            }
        });
        for needle in [
            "`generic` cannot be generic",
            "`by_value` takes `self` by value",
            "`pub fn no_receiver` has no `self` receiver",
            "argument `s` must be an owned type",
            "reserved for the runtime",
            "`state` is already a method of `kinesis::Handle`",
            "duplicate method name `dup`",
        ] {
            assert!(e.contains(needle), "missing {needle:?} in:\n{e}");
        }
        assert!(error(syn::parse_quote!(
            impl<T> W<T> {}
        ))
        .contains("generic impl blocks"));
        assert!(error(syn::parse_quote!(impl W<u8> {})).contains("generic component types"));
        assert!(error(syn::parse_quote!(impl Tr for W {})).contains("not on a trait impl"));
    }
}
