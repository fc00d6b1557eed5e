//! Records of user-defined entities: validation of payloads, reads, writes, and the JSON form
//! clients see. Every path goes through `service`.

pub mod input;
pub mod output;
pub mod service;
