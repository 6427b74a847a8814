//! Dimension values interned as small integers, so streams and groups compare and hash cheaply.

use std::collections::HashMap;

/// An interned dimension value.
pub(super) type Sym = u32;
/// "This dimension does not apply to the stream": the cell is `"N/A"`.
pub(super) const NA: Sym = Sym::MAX;
/// A filter value the dataset never had: no stream carries it, so it matches nothing.
pub(super) const UNKNOWN: Sym = Sym::MAX - 1;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) enum Atom {
    Text(Box<str>),
    Int(i64),
}

#[derive(Default)]
pub(super) struct Interner {
    pub(super) atoms: Vec<Atom>,
    pub(super) ids: HashMap<Atom, Sym>,
}

impl Interner {
    pub(super) fn intern(&mut self, atom: Atom) -> Sym {
        if let Some(id) = self.ids.get(&atom) {
            return *id;
        }
        let id = Sym::try_from(self.atoms.len()).unwrap_or(NA);
        self.atoms.push(atom.clone());
        self.ids.insert(atom, id);
        id
    }

    pub(super) fn text(&mut self, s: &str) -> Sym {
        self.intern(Atom::Text(s.into()))
    }
}
