//! Seeded bit flips in stored weights ([`plan`], [`corrupt_weights`], [`corrupt_file`]):
//! a bit class ([`BitClass`]), a region ([`Region`]), a severity ([`Severity`]) and a
//! seed pick the bits; every flip is recorded ([`FlipList`]).

mod bits;
mod engine;
mod file;
mod layout;
mod list;
mod region;
mod severity;
#[cfg(test)]
mod tests;
mod weights;

pub use crate::flipspec::{BitClass, Region, Severity};
pub use bits::{BitMask, FieldFormat, FloatFormat};
pub use engine::{apply, plan, Flip, FlipError, Plan, Site, Target, TensorMeta};
pub use file::{corrupt_file, flips_path, write_corrupted, CorruptFileError};
pub use layout::{layout, BlockLayout, FieldRun, Role};
pub use list::{FileId, FlipList, FLIPS_FORMAT};
pub use region::{glob_match, TensorClass};
pub use weights::{corrupt_weights, tensor_metas};
