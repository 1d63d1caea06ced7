//! Full-text search of log bodies: one tokenizer and one query meaning for
//! the head's in-memory postings and the blocks' Tantivy indexes.

mod index;
mod paged;
mod query;
mod tokenize;

pub use index::TextIndex;
pub use paged::{PAGE_ROWS, PageLists, PagedIndex, PagedIndexWriter};
pub use query::{FIELD_MARK, TermSource, TextQuery};
pub use tokenize::{
    MAX_TOKEN_LEN, Terms, Token, for_each_token, index_tokens, normalize, parts, push_index_tokens,
};
