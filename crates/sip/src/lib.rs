//! SIP protocol core, sans-IO: messages, transactions, dialogs and digest
//! authentication. Nothing here opens a socket, spawns a task or reads a clock:
//! every time-dependent call takes `now`.
pub mod auth;
pub mod guard;
