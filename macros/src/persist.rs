//! `#[derive(Persist)]`: registers which fields of a component are persisted.

use proc_macro2::TokenStream;
use quote::quote;
use syn::spanned::Spanned;
use syn::{Attribute, Data, DeriveInput, Fields, LitStr, Meta};

use crate::util::Errors;

/// One `#[persist]` field.
struct Field {
    /// The serde name: the key of the field in the serialised state.
    name: String,
    encrypt: bool,
    /// The Rust field.
    ident: syn::Ident,
}

pub(crate) fn expand(input: DeriveInput) -> syn::Result<TokenStream> {
    let ident = &input.ident;
    if !input.generics.params.is_empty() || input.generics.where_clause.is_some() {
        return Err(syn::Error::new_spanned(
            &input.generics,
            "derive(Persist) does not support generic types; the persisted fields are \
             registered for one concrete component type",
        ));
    }
    let fields = match &input.data {
        Data::Struct(s) => match &s.fields {
            Fields::Named(named) => named,
            other => {
                let span = if matches!(other, Fields::Unit) { ident.span() } else { other.span() };
                return Err(syn::Error::new(
                    span,
                    "derive(Persist) needs a struct with named fields: persisted fields are \
                     stored by name",
                ));
            }
        },
        Data::Enum(e) => {
            return Err(syn::Error::new_spanned(
                e.enum_token,
                "derive(Persist) supports only structs with named fields, not enums",
            ))
        }
        Data::Union(u) => {
            return Err(syn::Error::new_spanned(
                u.union_token,
                "derive(Persist) supports only structs with named fields, not unions",
            ))
        }
    };

    let mut errors = Errors::default();
    let rename_all = container_rename_all(&input.attrs, &mut errors);
    let mut persisted: Vec<Field> = Vec::new();
    for field in &fields.named {
        let Some(encrypt) = persist_attr(&field.attrs, &mut errors) else {
            continue;
        };
        let rust_name = field.ident.as_ref().expect("named field").to_string();
        let rust_name = rust_name.strip_prefix("r#").unwrap_or(&rust_name).to_owned();
        let serde = FieldSerde::parse(&field.attrs);
        if let Some(skip) = &serde.skip {
            let why = if skip.is_ident("skip") {
                "it is not part of the serialised state"
            } else if skip.is_ident("skip_serializing") {
                "it is never serialised, so there is nothing to store"
            } else {
                "it is never deserialised, so a stored value could not be loaded back"
            };
            errors.at(
                skip,
                format!("`#[persist]` field `{rust_name}` is `#[serde({})]`: {why}", quote!(#skip)),
            );
            continue;
        }
        if let Some(flatten) = &serde.flatten {
            errors.at(
                flatten,
                format!(
                    "`#[persist]` field `{rust_name}` is `#[serde(flatten)]`: a persisted field \
                     must be stored under its own key"
                ),
            );
            continue;
        }
        let ser = serde.rename_ser.clone().map(|l| l.value()).unwrap_or_else(|| {
            rename_all.ser.map_or_else(|| rust_name.clone(), |r| r.apply(&rust_name))
        });
        let de = serde.rename_de.clone().map(|l| l.value()).unwrap_or_else(|| {
            rename_all.de.map_or_else(|| rust_name.clone(), |r| r.apply(&rust_name))
        });
        if ser != de {
            let at = serde.rename_ser.as_ref().map_or(field.span(), LitStr::span);
            errors.push(syn::Error::new(
                at,
                format!(
                    "`#[persist]` field `{rust_name}` is serialised as `{ser}` but deserialised \
                     as `{de}`; a persisted field needs one name to be stored and loaded under"
                ),
            ));
            continue;
        }
        if persisted.iter().any(|f| f.name == ser) {
            errors.at(
                field,
                format!("two `#[persist]` fields are serialised under the same name `{ser}`"),
            );
            continue;
        }
        persisted.push(Field {
            name: ser,
            encrypt,
            ident: field.ident.clone().expect("named field"),
        });
    }
    errors.finish()?;

    let names = persisted.iter().map(|f| &f.name);
    let encrypts = persisted.iter().map(|f| f.encrypt);
    let idents = persisted.iter().map(|f| &f.ident);
    let type_name = ident.to_string();
    Ok(quote! {
        #[allow(non_upper_case_globals)]
        const _: () = {
            fn __kinesis_type_id() -> ::std::any::TypeId {
                ::std::any::TypeId::of::<#ident>()
            }
            /// Builds a whole state from `json` with serde (so every serde
            /// attribute applies) and swaps only the persisted fields into
            /// `state`; its other fields keep their values.
            fn __kinesis_load_fields(
                state: &mut (dyn ::std::any::Any + ::core::marker::Send),
                json: ::kinesis::__private::serde_json::Value,
            ) -> ::kinesis::Result<()> {
                let this = state.downcast_mut::<#ident>().ok_or_else(|| {
                    ::kinesis::Error::Invalid(::std::format!(
                        "persisted fields of {} loaded into another type",
                        ::core::stringify!(#ident)
                    ))
                })?;
                #[allow(unused_mut, unused_variables)]
                let mut loaded: #ident = ::kinesis::dynamic::from_json(json)?;
                #( ::core::mem::swap(&mut this.#idents, &mut loaded.#idents); )*
                ::core::result::Result::Ok(())
            }
            ::kinesis::__private::inventory::submit! {
                ::kinesis::persist::PersistSchema {
                    type_id: __kinesis_type_id,
                    load_fields: __kinesis_load_fields,
                    type_name: ::core::concat!(::core::module_path!(), "::", #type_name),
                    fields: &[#(
                        ::kinesis::persist::PersistField { name: #names, encrypt: #encrypts }
                    ),*],
                }
            }
        };
    })
}

/// Whether the field has `#[persist]` (`Some(false)`) or `#[persist(encrypt)]`
/// (`Some(true)`); errors for anything else.
fn persist_attr(attrs: &[Attribute], errors: &mut Errors) -> Option<bool> {
    let mut found: Option<bool> = None;
    for attr in attrs.iter().filter(|a| a.path().is_ident("persist")) {
        if found.is_some() {
            errors.at(attr, "duplicate `#[persist]` attribute");
            continue;
        }
        let mut encrypt = false;
        match &attr.meta {
            Meta::Path(_) => {}
            Meta::List(list) => {
                let parsed = list.parse_nested_meta(|meta| {
                    if meta.path.is_ident("encrypt") {
                        if !meta.input.is_empty() && !meta.input.peek(syn::Token![,]) {
                            return Err(
                                meta.error("`encrypt` takes no value: `#[persist(encrypt)]`")
                            );
                        }
                        if encrypt {
                            return Err(meta.error("duplicate `encrypt`"));
                        }
                        encrypt = true;
                        Ok(())
                    } else {
                        let path = &meta.path;
                        Err(meta.error(format!(
                            "unknown `persist` option `{}`; expected `#[persist]` or \
                             `#[persist(encrypt)]`",
                            crate::util::tokens_string(&quote!(#path).to_string())
                        )))
                    }
                });
                if let Err(e) = parsed {
                    errors.push(e);
                    continue;
                }
            }
            Meta::NameValue(nv) => {
                errors.at(nv, "expected `#[persist]` or `#[persist(encrypt)]`");
                continue;
            }
        }
        found = Some(encrypt);
    }
    found
}

/// The serde field attributes that decide a field's name and presence.
#[derive(Default)]
struct FieldSerde {
    rename_ser: Option<LitStr>,
    rename_de: Option<LitStr>,
    /// The `skip`, `skip_serializing` or `skip_deserializing` path.
    skip: Option<syn::Path>,
    flatten: Option<syn::Path>,
}

impl FieldSerde {
    /// Reads `#[serde(..)]`. Malformed serde attributes are left for serde's
    /// own derive to report.
    fn parse(attrs: &[Attribute]) -> FieldSerde {
        let mut out = FieldSerde::default();
        for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
            let _ = attr.parse_nested_meta(|meta| {
                let p = &meta.path;
                if p.is_ident("rename") {
                    if meta.input.peek(syn::Token![=]) {
                        let lit: LitStr = meta.value()?.parse()?;
                        out.rename_ser = Some(lit.clone());
                        out.rename_de = Some(lit);
                    } else {
                        meta.parse_nested_meta(|inner| {
                            let lit: LitStr = inner.value()?.parse()?;
                            if inner.path.is_ident("serialize") {
                                out.rename_ser = Some(lit);
                            } else if inner.path.is_ident("deserialize") {
                                out.rename_de = Some(lit);
                            }
                            Ok(())
                        })?;
                    }
                    return Ok(());
                }
                if p.is_ident("skip")
                    || p.is_ident("skip_serializing")
                    || p.is_ident("skip_deserializing")
                {
                    out.skip.get_or_insert_with(|| p.clone());
                } else if p.is_ident("flatten") {
                    out.flatten = Some(p.clone());
                }
                skip_value(&meta)
            });
        }
        out
    }
}

/// Consumes `= value` or `(..)` after a serde key we do not care about.
fn skip_value(meta: &syn::meta::ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(syn::Token![=]) {
        meta.value()?.parse::<syn::Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        meta.input.parse::<proc_macro2::TokenTree>()?;
    }
    Ok(())
}

/// serde's `rename_all` rules, applied to field names.
#[derive(Clone, Copy)]
enum RenameRule {
    Lower,
    Upper,
    Pascal,
    Camel,
    Snake,
    ScreamingSnake,
    Kebab,
    ScreamingKebab,
}

impl RenameRule {
    fn parse(s: &str) -> Option<RenameRule> {
        Some(match s {
            "lowercase" => RenameRule::Lower,
            "UPPERCASE" => RenameRule::Upper,
            "PascalCase" => RenameRule::Pascal,
            "camelCase" => RenameRule::Camel,
            "snake_case" => RenameRule::Snake,
            "SCREAMING_SNAKE_CASE" => RenameRule::ScreamingSnake,
            "kebab-case" => RenameRule::Kebab,
            "SCREAMING-KEBAB-CASE" => RenameRule::ScreamingKebab,
            _ => return None,
        })
    }

    /// As serde's `RenameRule::apply_to_field`.
    fn apply(self, field: &str) -> String {
        match self {
            RenameRule::Lower | RenameRule::Snake => field.to_owned(),
            RenameRule::Upper | RenameRule::ScreamingSnake => field.to_ascii_uppercase(),
            RenameRule::Pascal => crate::util::camel_case(field),
            RenameRule::Camel => {
                let pascal = crate::util::camel_case(field);
                let mut chars = pascal.chars();
                match chars.next() {
                    Some(first) => first.to_lowercase().chain(chars).collect(),
                    None => pascal,
                }
            }
            RenameRule::Kebab => field.replace('_', "-"),
            RenameRule::ScreamingKebab => field.to_ascii_uppercase().replace('_', "-"),
        }
    }
}

/// The container's `rename_all`, for serialising and deserialising.
#[derive(Default)]
struct RenameAll {
    ser: Option<RenameRule>,
    de: Option<RenameRule>,
}

fn container_rename_all(attrs: &[Attribute], errors: &mut Errors) -> RenameAll {
    let mut out = RenameAll::default();
    let mut set = |lit: &LitStr, ser: bool, de: bool, errors: &mut Errors| {
        match RenameRule::parse(&lit.value()) {
            Some(rule) => {
                if ser {
                    out.ser = Some(rule);
                }
                if de {
                    out.de = Some(rule);
                }
            }
            // serde reports it too; say why Persist cannot go on.
            None => errors.push(syn::Error::new(
                lit.span(),
                format!("unknown serde rename rule `{}`", lit.value()),
            )),
        }
    };
    for attr in attrs.iter().filter(|a| a.path().is_ident("serde")) {
        let _ = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("rename_all") {
                if meta.input.peek(syn::Token![=]) {
                    let lit: LitStr = meta.value()?.parse()?;
                    set(&lit, true, true, errors);
                } else {
                    meta.parse_nested_meta(|inner| {
                        let lit: LitStr = inner.value()?.parse()?;
                        if inner.path.is_ident("serialize") {
                            set(&lit, true, false, errors);
                        } else if inner.path.is_ident("deserialize") {
                            set(&lit, false, true, errors);
                        }
                        Ok(())
                    })?;
                }
                return Ok(());
            }
            skip_value(&meta)
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(input: DeriveInput) -> syn::Result<String> {
        expand(input).map(|t| t.to_string())
    }

    #[test]
    fn rename_rules_match_serde() {
        assert_eq!(RenameRule::Camel.apply("api_key"), "apiKey");
        assert_eq!(RenameRule::Pascal.apply("api_key"), "ApiKey");
        assert_eq!(RenameRule::ScreamingSnake.apply("api_key"), "API_KEY");
        assert_eq!(RenameRule::Kebab.apply("api_key"), "api-key");
        assert_eq!(RenameRule::ScreamingKebab.apply("api_key"), "API-KEY");
        assert_eq!(RenameRule::Lower.apply("api_key"), "api_key");
    }

    #[test]
    fn serde_names_are_used() {
        let out = names(syn::parse_quote! {
            #[derive(Serialize)]
            #[serde(rename_all = "camelCase")]
            struct S {
                #[persist] api_key: String,
                #[persist(encrypt)] #[serde(rename = "pw", default)] password: String,
                #[serde(skip)] cache: u8,
                #[persist] #[serde(skip_serializing_if = "Option::is_none")] r#type: Option<u8>,
            }
        })
        .unwrap();
        assert!(out.contains("name : \"apiKey\" , encrypt : false"), "{out}");
        assert!(out.contains("name : \"pw\" , encrypt : true"), "{out}");
        assert!(out.contains("name : \"type\" , encrypt : false"), "{out}");
        assert!(!out.contains("cache"), "{out}");
    }

    #[test]
    fn unsupported_uses_are_errors() {
        let err = |input: DeriveInput| names(input).unwrap_err().to_string();
        assert!(err(syn::parse_quote!(
            struct S<T> {
                #[persist]
                t: T,
            }
        ))
        .contains("generic"));
        assert!(err(syn::parse_quote!(
            enum E {
                A,
            }
        ))
        .contains("not enums"));
        assert!(err(syn::parse_quote!(
            struct S(#[persist] u8);
        ))
        .contains("named fields"));
        assert!(err(syn::parse_quote!(
            struct S {
                #[persist(zip)]
                a: u8,
            }
        ))
        .contains("`zip`"));
        assert!(err(syn::parse_quote!(
            struct S {
                #[persist]
                #[serde(skip)]
                a: u8,
            }
        ))
        .contains("serde(skip)"));
        assert!(err(syn::parse_quote!(
            struct S {
                #[persist]
                #[serde(rename(serialize = "a", deserialize = "b"))]
                a: u8,
            }
        ))
        .contains("one name"));
        assert!(err(syn::parse_quote!(
            struct S {
                #[persist]
                a: u8,
                #[persist]
                #[serde(rename = "a")]
                b: u8,
            }
        ))
        .contains("same name"));
    }
}
