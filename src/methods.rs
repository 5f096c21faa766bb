//! The method table `#[kinesis::handlers]` registers for a component type:
//! what the HTTP add-on and [`DynComponent::call_json`](crate::DynComponent::call_json)
//! read to call methods by name with JSON arguments.
//!
//! Tables are registered with [`inventory`] at link time and found by type
//! with [`methods_of`], so a component needs no extra wiring.
//!
//! # JSON Schemas
//!
//! Each table also carries JSON Schemas (draft 2020-12, the dialect of
//! OpenAPI 3.1), as functions of a shared [`SchemaGenerator`] so that the
//! types they mention are defined once, wherever the generator's
//! `definitions_path` says: the schema of each method's arguments
//! ([`MethodInfo::args_schema`]), of its reply ([`MethodInfo::reply_schema`])
//! and of the component's state ([`MethodTable::state_schema`]). A type that
//! implements [`schemars::JsonSchema`] is described by its schema; any other
//! type by the permissive schema `true` (any JSON value), so deriving
//! `JsonSchema` is never required. The HTTP add-on serves them as an
//! OpenAPI document.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::OnceLock;

use futures::future::BoxFuture;
use schemars::{Schema, SchemaGenerator};
use serde::Serialize;
use serde_json::Value;

use crate::Result;

/// One argument of a method.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ArgInfo {
    /// The argument's name, the key in the JSON object of arguments.
    pub name: &'static str,
    /// The Rust type as written, for documentation.
    #[serde(rename = "type")]
    pub ty: &'static str,
}

/// Writes a JSON Schema with a generator: the generator collects the
/// definitions of the named types the schema refers to.
pub type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

/// Writes the JSON Schema of a component's state, if its type implements
/// [`schemars::JsonSchema`].
pub type StateSchemaFn = fn(&mut SchemaGenerator) -> Option<Schema>;

/// One method callable by name.
///
/// Serialises (for the `meta.methods` of the HTTP add-on) as `name`,
/// `mutating`, `args`, `returns` and `doc`; the schema functions are left out
/// of that form and of `==`, which compares what serialises.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct MethodInfo {
    /// The method's name.
    pub name: &'static str,
    /// `false` for `&self` methods, which run on the latest snapshot without
    /// entering the mailbox; `true` for `&mut self` methods.
    pub mutating: bool,
    /// The arguments, in order.
    pub args: &'static [ArgInfo],
    /// The return type as written.
    pub returns: &'static str,
    /// The method's doc comment.
    pub doc: &'static str,
    /// The JSON Schema of the JSON object of named arguments: an object with
    /// one property per argument, each required unless its type is written
    /// `Option<_>`, and no other property. An argument whose type does not
    /// implement [`schemars::JsonSchema`] is described by `true`.
    #[serde(skip)]
    pub args_schema: SchemaFn,
    /// The JSON Schema of the reply: the `T` of a `Result<T, E>`, the value
    /// returned, or `null` for `()`; `true` if that type does not implement
    /// [`schemars::JsonSchema`].
    #[serde(skip)]
    pub reply_schema: SchemaFn,
}

impl PartialEq for MethodInfo {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
            && self.mutating == other.mutating
            && self.args == other.args
            && self.returns == other.returns
            && self.doc == other.doc
    }
}

impl Eq for MethodInfo {}

/// Calls a `&mut self` method: state (`&mut C`), context (`&mut Context<C>`),
/// method name, JSON object of named arguments.
pub type CallMutFn = for<'a> fn(
    &'a mut (dyn Any + Send),
    &'a mut (dyn Any + Send),
    &'a str,
    Value,
) -> BoxFuture<'a, Result<Value>>;

/// Calls a `&self` method on a snapshot's state (`&C`).
pub type CallRefFn =
    for<'a> fn(&'a (dyn Any + Send + Sync), &'a str, Value) -> BoxFuture<'a, Result<Value>>;

/// One call of a batch by name: a method and its JSON object of arguments.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, Serialize)]
pub struct BatchCall {
    /// The method's name.
    pub method: String,
    /// The named arguments (an object; `null` or absent for none).
    #[serde(default)]
    pub args: Value,
}

/// The methods of one component type.
#[derive(Debug)]
pub struct MethodTable {
    /// `TypeId::of::<C>`.
    pub type_id: fn() -> TypeId,
    /// Every method, in declaration order.
    pub methods: &'static [MethodInfo],
    /// Dispatches a mutating call.
    pub call_mut: CallMutFn,
    /// Dispatches a read-only call.
    pub call_ref: CallRefFn,
    /// The JSON Schema of the component's state: `None` if the component
    /// type does not implement [`schemars::JsonSchema`].
    pub state_schema: StateSchemaFn,
}

inventory::collect!(MethodTable);

impl MethodTable {
    /// The method called `name`.
    pub fn method(&self, name: &str) -> Option<&'static MethodInfo> {
        self.methods.iter().find(|m| m.name == name)
    }
}

/// The table registered for `C`, if it has `#[kinesis::handlers]`.
pub fn methods_of<C: 'static>() -> Option<&'static MethodTable> {
    static INDEX: OnceLock<HashMap<TypeId, &'static MethodTable>> = OnceLock::new();
    INDEX
        .get_or_init(|| {
            let mut index = HashMap::new();
            for table in inventory::iter::<MethodTable> {
                if index.insert((table.type_id)(), table).is_some() {
                    tracing::error!(
                        methods = ?table.methods.iter().map(|m| m.name).collect::<Vec<_>>(),
                        "a component type has two #[kinesis::handlers] blocks; only one is used: put all its methods in one block"
                    );
                }
            }
            index
        })
        .get(&TypeId::of::<C>())
        .copied()
}
