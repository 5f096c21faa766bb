//! MongoDB store of kinesis. (being built; see the project's issues.)
