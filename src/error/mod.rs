//! Errors of the facade: [`BuildError`] when a client cannot be built, [`Error`] when a
//! request fails.

mod build;
mod request;

pub use build::{BuildError, BuildErrorKind};
pub use request::{Error, ErrorKind};

pub use request::TimedOut;
pub(crate) use request::{sources, RequestLabel};
