"""Which inputs a batch runs and where each result goes.

Inputs are pattern files, ``file:inner[i]`` specs (see :func:`doubledip.io.read_pattern`)
or folders; a folder gives every file in it whose suffix :data:`doubledip.io.READ_SUFFIXES`
knows (its sub-folders too with ``recursive=True``), hidden files and anything inside the
output folder excepted.  Each input ``.../p1.npz`` gets the result ``OUTDIR/p1.npz``
and the figure ``OUTDIR/p1.png``; inputs with the same name (``a/p1.npz`` and
``b/p1.npz``, or ``p1.npz`` and ``p1.h5``) get a suffix that tells them apart --
the parent folder's name, else the file type, else a short hash of the path -- so
the same command always gives the same names and a re-run finds its results.
"""

from __future__ import annotations

import hashlib
import re
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from doubledip.errors import ConfigError, DataError
from doubledip.io import READ_SUFFIXES

__all__ = ["Job", "find_inputs", "plan_jobs", "RESULT_SUFFIX", "FIGURE_SUFFIX"]

RESULT_SUFFIX = ".npz"
FIGURE_SUFFIX = ".png"
_SPEC = re.compile(r"^(?P<file>.+?\.(?:h5|hdf5|cxi|npz)):(?P<inner>[^:]*)$", re.IGNORECASE)
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")


@dataclass(frozen=True)
class Job:
    """One input of a batch.

    Attributes
    ----------
    input : str
        The pattern spec as read (absolute path, or ``path:inner[i]``).
    name : str
        Stem of the outputs, unique within the batch.
    output : str
        Absolute path of the result file, ``OUTDIR/<name>.npz``.
    figure : str or None
        Absolute path of the figure, ``OUTDIR/<name>.png``; None without figures.
    """

    input: str
    name: str
    output: str
    figure: str | None = None

    @property
    def work_dir(self) -> Path:
        """Folder of the spread starts' partial results, ``OUTDIR/.batch/<name>``."""
        return Path(self.output).parent / ".batch" / self.name


def _spec_file(item: str) -> tuple[Path, str | None]:
    """``(file, inner)`` of an input; ``inner`` is None for a plain path."""
    path = Path(item)
    if not path.exists():
        match = _SPEC.match(item)
        if match and Path(match["file"]).is_file():
            return Path(match["file"]), match["inner"]
    return path, None


def _inside(path: Path, folder: Path | None) -> bool:
    return folder is not None and (path == folder or folder in path.parents)


def find_inputs(inputs, *, recursive: bool = False, exclude=None) -> list[str]:
    """The pattern specs named by ``inputs`` (files, ``file:inner`` specs or folders), in order.

    Parameters
    ----------
    inputs : iterable of str or Path
        Files are taken as given (a file that cannot be read fails in its own
        task); folders give their files with a known pattern suffix, sorted by name.
    recursive : bool
        Look into sub-folders of the folders too.
    exclude : str or Path, optional
        A folder whose files are never inputs (the output folder).

    Returns
    -------
    list of str
        Absolute paths (or ``path:inner`` specs), duplicates removed.

    Raises
    ------
    DataError
        An input that does not exist.
    ConfigError
        No pattern file found at all.
    """
    exclude = Path(exclude).resolve() if exclude is not None else None
    found: list[str] = []
    for item in inputs:
        item = str(item)
        path, inner = _spec_file(item)
        if inner is not None:
            found.append(f"{path.resolve()}:{inner}")
        elif path.is_dir():
            candidates = path.rglob("*") if recursive else path.iterdir()
            for file in sorted(candidates):
                hidden = any(part.startswith(".") for part in file.relative_to(path).parts)
                if hidden or not file.is_file() or file.suffix.lower() not in READ_SUFFIXES:
                    continue
                if not _inside(file.resolve(), exclude):
                    found.append(str(file.resolve()))
        elif path.exists():
            found.append(str(path.resolve()))
        else:
            raise DataError(item, "no such file or folder", "check the path of the input")
    found = list(dict.fromkeys(found))
    if not found:
        suffixes = " ".join(READ_SUFFIXES)
        hint = "" if recursive else " (add --recursive to look in sub-folders)"
        raise ConfigError(f"no pattern files found in {', '.join(map(str, inputs)) or 'the inputs'} "
                          f"(looked for {suffixes}); give pattern files or folders holding them{hint}")
    return found


def _stem(spec: str) -> str:
    path, inner = _spec_file(spec)
    stem = path.stem
    if inner:
        stem += "-" + _UNSAFE.sub("-", inner).strip("-")
    return stem


def _disambiguate(specs: list[str]) -> list[str]:
    """Suffixes for specs sharing a stem: parent folder name, else file type, else a path hash."""
    def parent(spec):
        return _UNSAFE.sub("-", _spec_file(spec)[0].parent.name) or "root"

    def kind(spec):
        return _spec_file(spec)[0].suffix.lstrip(".").lower() or "none"

    def digest(spec):
        return hashlib.sha1(spec.encode()).hexdigest()[:8]

    for rule in (parent, kind, digest):
        suffixes = [rule(s) for s in specs]
        if len({s.lower() for s in suffixes}) == len(suffixes):
            return suffixes
    return [digest(s) for s in specs]  # pragma: no cover - sha1 prefixes of distinct paths


def plan_jobs(specs, outdir, *, figures: bool = True) -> list[Job]:
    """A :class:`Job` per input spec, with unique output names under ``outdir``.

    Names are the file stems (plus ``-<inner>`` for ``file:inner`` specs);
    stems shared by several inputs (compared case-insensitively) get
    ``-<suffix>`` as described in the module documentation.
    """
    outdir = Path(outdir).resolve()
    specs = list(specs)
    stems = [_stem(s) for s in specs]
    groups: dict[str, list[int]] = defaultdict(list)
    for i, stem in enumerate(stems):
        groups[stem.lower()].append(i)
    names = list(stems)
    for members in groups.values():
        if len(members) > 1:
            for i, suffix in zip(members, _disambiguate([specs[i] for i in members])):
                names[i] = f"{stems[i]}-{suffix}"
    taken = [n.lower() for n in names]
    if len(set(taken)) != len(taken):  # a suffixed name equal to another input's stem: hash them all
        names = [f"{stem}-{hashlib.sha1(s.encode()).hexdigest()[:8]}" if taken.count(n.lower()) > 1 else n
                 for stem, s, n in zip(stems, specs, names)]
    if len({n.lower() for n in names}) != len(names):  # pragma: no cover - astronomically unlikely
        raise ConfigError("cannot give every input a distinct result name; rename the input files")
    return [
        Job(spec, name, str(outdir / f"{name}{RESULT_SUFFIX}"),
            str(outdir / f"{name}{FIGURE_SUFFIX}") if figures else None)
        for spec, name in zip(specs, names)
    ]
