//! Procedural macros of kinesis: `#[derive(Persist)]` and `#[kinesis::handlers]`.
//!
//! Use them through the `kinesis` crate (`kinesis::Persist`,
//! `kinesis::handlers`), whose documentation has runnable examples. The
//! generated code refers only to `::kinesis::...` paths, so a crate using the
//! macros needs no dependency besides `kinesis` (and `serde` for its own
//! derives).

mod handlers;
mod persist;
mod util;

use proc_macro::TokenStream;

/// Registers which fields of a component are persisted, and which of them are
/// stored encrypted.
///
/// Mark fields with `#[persist]` (stored as they are) or `#[persist(encrypt)]`
/// (stored AES-256-GCM encrypted, and shown as `"***"` wherever the state is
/// served as JSON). The derive submits a `kinesis::persist::PersistSchema`
/// for the type, found at run time with `kinesis::persist::schema_of`; the
/// runtime loads the fields before `init` and writes them through after every
/// change.
///
/// Field names are the serde names: `#[serde(rename = "..")]` on the field and
/// `#[serde(rename_all = "..")]` on the struct are honoured.
///
/// Compile errors (with spans):
/// - generic types, enums, unions, tuple and unit structs;
/// - unknown `#[persist(..)]` options, and a repeated `#[persist]`;
/// - a `#[persist]` field that is `#[serde(skip)]`, `skip_serializing`,
///   `skip_deserializing` or `flatten`, or that has different serialize and
///   deserialize names, or the same serde name as another persisted field.
///
/// A struct without any `#[persist]` field compiles and registers an empty
/// schema (nothing is stored).
///
/// ```ignore
/// #[derive(Clone, Default, Serialize, Deserialize, kinesis::Persist)]
/// struct Account {
///     #[persist]
///     owner: String,
///     #[persist(encrypt)]
///     #[serde(rename = "apiKey")]
///     api_key: String,
///     cache: u64, // not persisted
/// }
/// ```
#[proc_macro_derive(Persist, attributes(persist))]
pub fn derive_persist(input: TokenStream) -> TokenStream {
    let input = syn::parse_macro_input!(input as syn::DeriveInput);
    persist::expand(input).unwrap_or_else(syn::Error::into_compile_error).into()
}

/// Turns the `pub` methods of an inherent `impl` block of a component into
/// messages, typed handle methods and a JSON method table.
///
/// Every `pub` method (plain `pub`; `pub(crate)` and private methods are left
/// alone) takes `&mut self` or `&self`:
/// - `&mut self` methods are **mutating**: each gets a hidden message struct
///   `__{Type}{Method}` (for `Counter::increment`: `__CounterIncrement`, one
///   public field per argument) and an `impl kinesis::Handler<_> for Type`
///   that calls the method, so calls go through the mailbox, one at a time.
/// - `&self` methods are **read-only**: they run on the latest published
///   snapshot, without entering the mailbox.
///
/// Arguments are named, owned, serde types. A mutating method may take the
/// component's `&mut Context<Self>` as its last parameter. Methods may be
/// `async`. The return type is `()`, a value `T: Serialize`, or a
/// `Result<T, E>` (any path whose last segment is `Result`, such as
/// `kinesis::Result<T>`): an `E` that is `Into<kinesis::Error>` is converted
/// with `into`, any other `E: Display` becomes `kinesis::Error::Handler` with
/// its message.
///
/// It generates, beside the unchanged `impl` block:
/// - `pub trait {Type}Handle` (for `Counter`: `CounterHandle`), implemented
///   for `kinesis::Handle<Type>`, with one method per `pub` method taking the
///   same arguments (without the context) and returning
///   `impl Future<Output = kinesis::Result<Reply>> + Send`: mutating ones send
///   the message with `Handle::ask`, read-only ones call the method on
///   `handle.snapshot().state`;
/// - the method table (`kinesis::methods::MethodTable`: names, mutating
///   flags, argument names and types, return types, doc comments, and the
///   functions that call a method by name with a JSON object of named
///   arguments), which `DynComponent::call_json` and the HTTP add-on use.
///
/// In the JSON path, arguments are a JSON object (or `null` for none); an
/// argument left out is read as `null`, so `Option` arguments may be omitted.
/// Unknown argument names, missing required arguments and values of the wrong
/// type are `Error::Invalid` naming the argument; an unknown method is
/// `Error::NotFound`.
///
/// Compile errors (with spans): attribute arguments, trait impls, generic
/// impls or component types, generic methods, `self` by value or typed
/// receivers, `pub` functions without a receiver, arguments that are not
/// plain names, reference, borrowed or `impl Trait` argument and return
/// types, a `Context` that is not the last parameter or is taken by a
/// read-only method, duplicate names, names starting with `_` (reserved:
/// `_control`, `_watch`), names of inherent methods of `kinesis::Handle`
/// (such as `name`, `state` or `restart`, which would shadow the typed
/// method), `unsafe`/`extern` methods and `#[cfg]` on methods. Arguments that
/// are not `DeserializeOwned` and replies that are not `Serialize` are trait
/// bound errors pointing at the type.
///
/// Use one `#[kinesis::handlers]` block per component type.
///
/// ```ignore
/// #[kinesis::handlers]
/// impl Counter {
///     /// Adds `by` and returns the new count.
///     pub async fn increment(&mut self, by: u64) -> kinesis::Result<u64> {
///         self.count += by;
///         Ok(self.count)
///     }
///     /// The current count.
///     pub fn total(&self) -> u64 {
///         self.count
///     }
/// }
/// // counter.increment(3).await? with `CounterHandle` in scope.
/// ```
#[proc_macro_attribute]
pub fn handlers(attr: TokenStream, item: TokenStream) -> TokenStream {
    let item = syn::parse_macro_input!(item as syn::ItemImpl);
    handlers::expand(attr.into(), item).into()
}
