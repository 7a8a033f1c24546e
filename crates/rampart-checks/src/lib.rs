//! Rampart's built-in checks.

pub mod practices;
pub mod pss;
