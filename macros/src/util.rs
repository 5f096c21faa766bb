//! Helpers shared by both macros.

use quote::ToTokens;
use syn::visit::Visit;
use syn::visit_mut::VisitMut;
use syn::{Attribute, Expr, ExprLit, Lit, Meta, Type};

/// Collects errors so that one expansion reports every problem at once.
#[derive(Default)]
pub(crate) struct Errors(Option<syn::Error>);

impl Errors {
    /// Adds one error.
    pub(crate) fn push(&mut self, error: syn::Error) {
        match &mut self.0 {
            Some(all) => all.combine(error),
            None => self.0 = Some(error),
        }
    }

    /// Adds an error spanning `tokens`.
    pub(crate) fn at(&mut self, tokens: impl ToTokens, message: impl std::fmt::Display) {
        self.push(syn::Error::new_spanned(tokens, message));
    }

    /// `Err` with every error collected, if any.
    pub(crate) fn finish(self) -> syn::Result<()> {
        match self.0 {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// A type as a short human-readable string: `Option<Vec<u8>>`, `(u32, String)`.
pub(crate) fn type_string(ty: &Type) -> String {
    tokens_string(&ty.to_token_stream().to_string())
}

/// Drops the spaces `TokenStream::to_string` puts between every token, keeping
/// those that separate two words (`dyn Trait`) and those after `,` and `;` and around `+` and `=`.
pub(crate) fn tokens_string(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let word = |c: char| c.is_alphanumeric() || c == '_' || c == '\'';
    let mut out = String::with_capacity(s.len());
    for (i, &c) in chars.iter().enumerate() {
        if c != ' ' {
            out.push(c);
            continue;
        }
        let prev = out.chars().last();
        let next = chars.get(i + 1).copied();
        let keep = match (prev, next) {
            (Some(',' | ';' | '+' | '='), _) | (_, Some('+' | '=')) => true,
            (Some(p), Some(n)) => word(p) && word(n),
            _ => false,
        };
        if keep {
            out.push(' ');
        }
    }
    out
}

/// The text of the `#[doc = "..."]` attributes, one leading space per line
/// removed, surrounding blank lines trimmed.
pub(crate) fn doc_string(attrs: &[Attribute]) -> String {
    let mut lines = Vec::new();
    for attr in attrs {
        if !attr.path().is_ident("doc") {
            continue;
        }
        if let Meta::NameValue(nv) = &attr.meta {
            if let Expr::Lit(ExprLit { lit: Lit::Str(s), .. }) = &nv.value {
                for line in s.value().split('\n') {
                    lines.push(line.strip_prefix(' ').unwrap_or(line).trim_end().to_owned());
                }
            }
        }
    }
    lines.join("\n").trim_matches('\n').to_owned()
}

/// The `#[doc]` attributes of `attrs`, for copying onto generated items.
pub(crate) fn doc_attrs(attrs: &[Attribute]) -> Vec<&Attribute> {
    attrs.iter().filter(|a| a.path().is_ident("doc")).collect()
}

/// `snake_case` → `SnakeCase`.
pub(crate) fn camel_case(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut upper = true;
    for c in s.chars() {
        if c == '_' {
            upper = true;
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

/// Replaces every `Self` type with a concrete type, so that signatures can
/// be used outside the `impl` block.
pub(crate) struct ReplaceSelf<'a>(pub(crate) &'a Type);

impl VisitMut for ReplaceSelf<'_> {
    fn visit_type_mut(&mut self, ty: &mut Type) {
        if let Type::Path(p) = ty {
            if p.qself.is_none() && p.path.is_ident("Self") {
                *ty = self.0.clone();
                return;
            }
        }
        syn::visit_mut::visit_type_mut(self, ty);
    }
}

/// Finds what an argument or return type of a handler method may not contain:
/// references, borrowed lifetimes, `impl Trait`, `_`.
pub(crate) struct OwnedTypeCheck<'e> {
    /// What the type is, for messages: "argument `by`", "return type".
    pub(crate) what: String,
    /// Where the errors go.
    pub(crate) errors: &'e mut Errors,
}

impl<'ast> Visit<'ast> for OwnedTypeCheck<'_> {
    fn visit_type_reference(&mut self, r: &'ast syn::TypeReference) {
        self.errors.at(
            r,
            format!(
                "{} must be an owned type: handler methods take and return values that are \
                 (de)serialised as JSON, not references (use `String` for `&str`, `Vec<T>` for `&[T]`)",
                self.what
            ),
        );
    }

    fn visit_type_impl_trait(&mut self, t: &'ast syn::TypeImplTrait) {
        self.errors.at(
            t,
            format!("{} cannot be `impl Trait`: handler methods need concrete types", self.what),
        );
    }

    fn visit_type_infer(&mut self, t: &'ast syn::TypeInfer) {
        self.errors.at(t, format!("{} must be written out, not `_`", self.what));
    }

    fn visit_lifetime(&mut self, l: &'ast syn::Lifetime) {
        if l.ident != "static" {
            self.errors.at(
                l,
                format!(
                    "{} cannot borrow (`{l}`): handler methods take and return owned values",
                    self.what
                ),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_strings_are_compact() {
        let ty: Type = syn::parse_quote!(Option<Vec<u8>>);
        assert_eq!(type_string(&ty), "Option<Vec<u8>>");
        let ty: Type = syn::parse_quote!((u32, std::string::String));
        assert_eq!(type_string(&ty), "(u32, std::string::String)");
        let ty: Type = syn::parse_quote!([u8; 4]);
        assert_eq!(type_string(&ty), "[u8; 4]");
        let ty: Type = syn::parse_quote!(Box<dyn std::error::Error + Send>);
        assert_eq!(type_string(&ty), "Box<dyn std::error::Error + Send>");
        let ty: Type = syn::parse_quote!(kinesis::Result<HashMap<String, u64>>);
        assert_eq!(type_string(&ty), "kinesis::Result<HashMap<String, u64>>");
    }

    #[test]
    fn camel_case_joins_words() {
        assert_eq!(camel_case("increment"), "Increment");
        assert_eq!(camel_case("add_many_items"), "AddManyItems");
        assert_eq!(camel_case("x2_y"), "X2Y");
    }

    #[test]
    fn doc_strings_strip_one_space() {
        let f: syn::ItemFn = syn::parse_quote! {
            /// Adds `by`.
            ///
            ///     indented
            #[inline]
            fn f() {}
        };
        assert_eq!(doc_string(&f.attrs), "Adds `by`.\n\n    indented");
    }

    #[test]
    fn self_is_replaced() {
        let concrete: Type = syn::parse_quote!(Counter);
        let mut ty: Type = syn::parse_quote!(Vec<Option<Self>>);
        ReplaceSelf(&concrete).visit_type_mut(&mut ty);
        assert_eq!(type_string(&ty), "Vec<Option<Counter>>");
    }
}
