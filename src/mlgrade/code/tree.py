"""Remove a directory tree that untrusted code has written, at any depth.

shutil.rmtree recurses once per level (RecursionError past ~1,000 levels, even with
ignore_errors) and names entries by paths that outgrow PATH_MAX. Here no path is longer than
root + two names: each subdirectory found is first renamed to a fresh name directly under
`root`, then emptied from there, so a tree of any depth becomes a flat list of directories."""

from __future__ import annotations

import itertools
import os


def remove_tree(root: str) -> bool:
    """Delete `root` and everything in it, symlinks never followed. Only `root`'s own children may
    be named by the code that wrote the tree (mlgrade creates `root`, so nothing else writes directly
    in it). True when nothing is left."""
    if not os.path.lexists(root):
        return True
    counter = itertools.count()
    pending = [root]
    i = 0
    while i < len(pending):
        directory = pending[i]
        i += 1
        try:
            with os.scandir(directory) as listing:
                entries = [(entry.path, entry.is_dir(follow_symlinks=False)) for entry in listing]
        except OSError:
            continue
        for path, is_dir in entries:
            try:
                if not is_dir:
                    os.unlink(path)
                elif directory == root:
                    pending.append(path)
                else:
                    flat = _fresh(root, counter)
                    os.rename(path, flat)
                    pending.append(flat)
            except OSError:
                pass
    for directory in reversed(pending):  # children (renamed later) before the directories they left
        try:
            os.rmdir(directory)
        except OSError:
            pass
    return not os.path.lexists(root)


def _fresh(root: str, counter: itertools.count) -> str:
    while True:
        path = os.path.join(root, f".rm-{next(counter)}")
        if not os.path.lexists(path):
            return path
