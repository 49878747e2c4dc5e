//! What every message on the wire obeys, whatever its version: the schema version this
//! build speaks and the size limit.

/// The only schema version this build writes and reads.
pub const SCHEMA_VERSION: u64 = 1;

/// Bodies larger than this are refused unread: a partition message is a few hundred bytes.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;
