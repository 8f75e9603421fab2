//! Go's `strconv` quoting, from berth's one home for it (`berth_sys::go`).

pub(crate) use berth_sys::go::{can_backquote, is_print, quote, quote_ascii, quote_rune};
