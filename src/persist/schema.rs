//! The persisted-field schema a `#[derive(Persist)]` registers for its type.

use std::any::TypeId;
use std::collections::HashMap;
use std::sync::OnceLock;

use serde_json::Value;

/// What HTTP responses, logs and `Debug` show instead of an encrypted field.
pub const REDACTED: &str = "***";

/// One persisted field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PersistField {
    /// The field's serde name (its key in the serialised state).
    pub name: &'static str,
    /// Stored AES-256-GCM encrypted, and redacted wherever the state is shown.
    pub encrypt: bool,
}

/// The persisted fields of one component type. Registered by
/// `#[derive(Persist)]`; looked up with [`schema_of`].
#[derive(Debug)]
pub struct PersistSchema {
    /// `TypeId::of::<T>` of the component type.
    pub type_id: fn() -> TypeId,
    /// Sets the persisted fields of a state (`&mut T`) from a whole
    /// serialised state, leaving its other fields, `#[serde(skip)]` ones
    /// included, as they are. The error names the field that does not fit.
    pub load_fields: fn(&mut (dyn std::any::Any + Send), Value) -> crate::Result<()>,
    /// The type's name, for records and messages.
    pub type_name: &'static str,
    /// The persisted fields, in declaration order.
    pub fields: &'static [PersistField],
}

inventory::collect!(PersistSchema);

impl PersistSchema {
    /// Whether any field is encrypted.
    pub fn has_encrypted(&self) -> bool {
        self.fields.iter().any(|f| f.encrypt)
    }

    /// Replaces every encrypted field of a serialised state with `"***"`.
    pub fn redact(&self, state: &mut Value) {
        if let Value::Object(map) = state {
            for field in self.fields.iter().filter(|f| f.encrypt) {
                if let Some(v) = map.get_mut(field.name) {
                    *v = Value::String(REDACTED.to_owned());
                }
            }
        }
    }
}

/// The schema registered for `T` by `#[derive(Persist)]`, if any.
pub fn schema_of<T: 'static>() -> Option<&'static PersistSchema> {
    schema_by_id(TypeId::of::<T>())
}

fn schema_by_id(id: TypeId) -> Option<&'static PersistSchema> {
    static INDEX: OnceLock<HashMap<TypeId, &'static PersistSchema>> = OnceLock::new();
    INDEX
        .get_or_init(|| {
            inventory::iter::<PersistSchema>.into_iter().map(|s| ((s.type_id)(), s)).collect()
        })
        .get(&id)
        .copied()
}
