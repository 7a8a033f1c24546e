//! Rampart's built-in checks.

pub mod pss;
