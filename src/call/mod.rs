//! The call's neutral vocabulary, below both `verification/` and `provider/`: what the callee
//! hears ([`prompts`]), what a call is for and how it ends ([`outcome`]), and a call's progress
//! ([`progress`]). Imports run one way: `verification` → `provider` → `call`.

pub mod outcome;
pub mod progress;
pub mod prompts;

pub use outcome::{FailureReason, Purpose, Status};
pub use progress::CallProgress;
