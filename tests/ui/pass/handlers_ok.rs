//! Everything `#[kinesis::handlers]` accepts, in a crate that denies warnings,
//! missing docs and unsafe code.
#![forbid(unsafe_code)]
#![deny(warnings, missing_docs, unreachable_pub, clippy::all)]

use std::fmt;

use kinesis::{Component, Container, Context, Error, Precondition, Result};
use serde::{Deserialize, Serialize};
use serde_json::json;

mod private {
    use super::*;

    /// A type private to this module, used as an argument and a reply.
    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
    pub(crate) struct Point {
        pub(crate) x: i64,
        pub(crate) y: i64,
    }

    /// An error that only implements `Display`.
    #[derive(Debug)]
    pub(crate) struct Refused;

    impl fmt::Display for Refused {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("refused")
        }
    }

    /// A component private to this module.
    #[derive(Clone, Default, Serialize, Deserialize)]
    pub(crate) struct Shape {
        pub(crate) points: Vec<Point>,
        pub(crate) kind: String,
    }

    impl Component for Shape {}

    #[kinesis::handlers]
    impl Shape {
        /// Makes a shape; not `pub`, so not a message.
        pub(crate) fn new() -> Self {
            Shape::default()
        }

        /// Adds a point.
        pub async fn push(&mut self, point: Point) -> Result<usize> {
            self.points.push(point);
            Ok(self.points.len())
        }

        /// Sets the kind; `r#type` is the argument `type`.
        pub fn set_type(&mut self, r#type: String, _ctx: &mut Context<Self>) {
            self.kind = r#type;
        }

        /// Fails with a `Display` error.
        pub fn refuse(&mut self) -> std::result::Result<(), Refused> {
            Err(Refused)
        }

        /// Returns a copy of the whole component.
        pub fn copy(&mut self, scale: Option<i64>) -> kinesis::Result<Self, Error> {
            let mut copy = self.clone();
            for p in &mut copy.points {
                p.x *= scale.unwrap_or(1);
            }
            Ok(copy)
        }

        /// The points.
        pub async fn points(&self) -> Vec<Point> {
            self.points.clone()
        }

        /// The first point.
        pub fn first(&self) -> std::result::Result<Point, Refused> {
            self.points.first().cloned().ok_or(Refused)
        }

        /// A private helper, left alone.
        fn helper(&self) -> usize {
            self.points.len()
        }
    }

    pub(crate) fn check(shape: &Shape) -> usize {
        shape.helper()
    }
}

use private::{Point, Shape, ShapeHandle};

fn main() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(async {
        let root = Container::root().await.unwrap();
        let shape = root.add("shape", Shape::new()).await.unwrap();
        assert_eq!(shape.push(Point { x: 1, y: 2 }).await.unwrap(), 1);
        shape.set_type("line".into()).await.unwrap();
        assert_eq!(
            shape.refuse().await.unwrap_err(),
            Error::Handler("refused".into())
        );
        assert_eq!(shape.copy(Some(3)).await.unwrap().points[0].x, 3);
        assert_eq!(shape.points().await.unwrap(), vec![Point { x: 1, y: 2 }]);
        assert_eq!(shape.first().await.unwrap(), Point { x: 1, y: 2 });
        assert_eq!(private::check(&shape.snapshot().state), 1);

        let d = root.get_dyn("shape").unwrap();
        d.call_json("set_type", json!({"type": "polygon"}), Precondition::Any)
            .await
            .unwrap();
        assert_eq!(shape.snapshot().state.kind, "polygon");
        assert_eq!(
            d.call_json("first", json!(null), Precondition::Any).await.unwrap(),
            json!({"x": 1, "y": 2})
        );
        root.shutdown().await.unwrap();
    });
}
