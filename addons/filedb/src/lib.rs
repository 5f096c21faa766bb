//! The embedded file store of kinesis (file://DIR). (being built; see the project's issues.)
