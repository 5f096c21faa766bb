//! HTTP add-on of kinesis: every component as a REST resource. (being built; see the project's issues.)
