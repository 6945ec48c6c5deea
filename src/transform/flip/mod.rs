//! Seeded bit flips in stored weights ([`Plan`], [`corrupt_weights`], [`corrupt_file`]):
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
pub use engine::{Flip, FlipError, Plan, Site, Target};
pub use file::{corrupt_file, CorruptFileError};
pub(crate) use file::{flips_path, write_corrupted};
pub use layout::Role;
pub use list::{FileId, FlipList, FLIPS_FORMAT};
pub use region::TensorClass;
pub use weights::corrupt_weights;
