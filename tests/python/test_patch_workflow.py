# Copyright (c) 2026 The ovs-upcall-trace authors.
# Licensed under the Apache License, Version 2.0.
"""The patch workflow of Documentation/contributing.rst, end to end.

A developer exports the patched tree as a git repository, edits an Open
vSwitch file there (vswitchd/bridge.c), commits, and regenerates patches/:
the series must come back unchanged but for one new patch, which applies to
the pristine tree with no fuzz.
"""

import os
import shutil
import subprocess

import pytest

SRCDIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OVS_SOURCE = os.environ.get("OVS_SOURCE")

pytestmark = pytest.mark.skipif(
    not OVS_SOURCE or not os.path.isdir(OVS_SOURCE),
    reason="OVS_SOURCE (the pristine Open vSwitch tree) is not set")


def run(*args, cwd=None):
    return subprocess.run(args, cwd=cwd, check=True, text=True,
                          stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT).stdout


def series(srcdir):
    with open(os.path.join(srcdir, "patches", "series")) as f:
        return [line.strip() for line in f
                if line.strip() and not line.startswith("#")]


@pytest.fixture
def checkout(tmp_path):
    """A copy of this project's patches and workflow script."""
    copy = tmp_path / "project"
    copy.mkdir()
    shutil.copytree(os.path.join(SRCDIR, "patches"), copy / "patches")
    shutil.copytree(os.path.join(SRCDIR, "build-aux"), copy / "build-aux")
    return copy


def test_round_trip_is_identical(checkout, tmp_path):
    workflow = str(checkout / "build-aux" / "ovs-patch-workflow")
    gitdir = str(tmp_path / "ovs-git")
    before = {p: (checkout / "patches" / p).read_bytes()
              for p in series(str(checkout))}

    out = run(workflow, "export", str(checkout), OVS_SOURCE, gitdir)
    assert "%d patch commits" % len(before) in out
    log = run("git", "log", "--format=%s", "pristine..HEAD", cwd=gitdir)
    assert len(log.splitlines()) == len(before)

    run(workflow, "regenerate", str(checkout), gitdir)
    after = {p: (checkout / "patches" / p).read_bytes()
             for p in series(str(checkout))}
    assert after == before


def test_edit_bridge_c_gives_a_new_patch(checkout, tmp_path):
    workflow = str(checkout / "build-aux" / "ovs-patch-workflow")
    gitdir = tmp_path / "ovs-git"
    run(workflow, "export", str(checkout), OVS_SOURCE, str(gitdir))

    bridge_c = gitdir / "vswitchd" / "bridge.c"
    text = bridge_c.read_text()
    marker = "/* Edited through the patch workflow. */\n"
    bridge_c.write_text(marker + text)
    env = dict(os.environ, GIT_AUTHOR_NAME="Dev", GIT_AUTHOR_EMAIL="d@x",
               GIT_COMMITTER_NAME="Dev", GIT_COMMITTER_EMAIL="d@x")
    subprocess.run(["git", "commit", "-q", "-a", "-m",
                    "bridge: Mark the file.\n\nTested: by the test."],
                   cwd=str(gitdir), check=True, env=env)

    old = series(str(checkout))
    run(workflow, "regenerate", str(checkout), str(gitdir))
    new = series(str(checkout))
    assert new[:len(old)] == old
    assert len(new) == len(old) + 1
    assert new[-1].endswith("-bridge-Mark-the-file.patch")
    patch = (checkout / "patches" / new[-1]).read_text()
    assert "Subject: [PATCH] bridge: Mark the file." in patch
    assert "+" + marker.rstrip("\n") in patch

    # The whole new series applies to the pristine tree with no fuzz.
    tree = tmp_path / "tree"
    shutil.copytree(OVS_SOURCE, tree, symlinks=True)
    for p in new:
        with open(checkout / "patches" / p) as f:
            subprocess.run(["patch", "-p1", "--fuzz=0", "--quiet",
                            "--forward"],
                           cwd=str(tree), stdin=f, check=True)
    assert (tree / "vswitchd" / "bridge.c").read_text().startswith(marker)
