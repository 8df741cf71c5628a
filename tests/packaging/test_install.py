"""`make install`: `cmake --install` into a temporary prefix, and the server
runs from there (ctest packaging_install; $TRIGGERS_BUILD_DIR is the build
directory, $TRIGGERS_BIN its binary)."""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import smoke  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("TRIGGERS_BUILD_DIR", os.path.join(REPO, "build"))
BIN = os.environ.get("TRIGGERS_BIN", os.path.join(BUILD, "triggers"))


def install(prefix):
    p = subprocess.run(["cmake", "--install", BUILD, "--prefix", prefix],
                       capture_output=True, text=True, timeout=120)
    if p.returncode != 0:
        raise AssertionError("cmake --install failed (%d):\n%s%s" % (p.returncode, p.stdout, p.stderr))
    return p.stdout


def serve_flags(binary):
    """The long flags of `triggers serve --help`."""
    out = subprocess.run([binary, "serve", "--help"], capture_output=True, text=True,
                         timeout=10).stdout
    return sorted(set(re.findall(r"(?m)^\s+(?:-\w,)?\s*(--[a-z][a-z0-9-]+)", out)) - {"--help", "--help-all"})


def render_man(path, manpath=None):
    """The man page as plain text (man -l), or None when man is missing."""
    if not shutil.which("man"):
        return None
    env = dict(os.environ, LC_ALL="C", MANWIDTH="200", MAN_KEEP_FORMATTING="")
    p = subprocess.run(["man", "-l", path], capture_output=True, text=True, timeout=30, env=env)
    if p.returncode != 0:
        raise AssertionError("man -l %s failed: %s" % (path, p.stderr))
    return re.sub(r".\x08", "", p.stdout)


class InstallTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.prefix = tempfile.mkdtemp(prefix="triggers-install-")
        cls.log = install(cls.prefix)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.prefix, ignore_errors=True)

    def path(self, rel):
        return os.path.join(self.prefix, rel)

    def test_files_are_installed(self):
        for rel in ["bin/triggers", "share/man/man1/triggers.1", "lib/systemd/system/triggers.service",
                    "lib/sysusers.d/triggers.conf", "etc/triggers/triggers.toml",
                    "share/doc/triggers/examples/triggers.toml", "share/doc/triggers/operations.md",
                    "share/doc/triggers/api.md", "share/doc/triggers/README.md"]:
            self.assertTrue(os.path.isfile(self.path(rel)), rel + " is missing; install log:\n" + self.log)
        self.assertTrue(os.access(self.path("bin/triggers"), os.X_OK))
        with open(os.path.join(REPO, "packaging", "triggers.toml")) as f:
            example = f.read()
        with open(self.path("share/doc/triggers/examples/triggers.toml")) as f:
            self.assertEqual(f.read(), example)

    def test_unit_runs_the_installed_binary_with_the_installed_config(self):
        with open(self.path("lib/systemd/system/triggers.service")) as f:
            unit = f.read()
        self.assertIn("\nExecStart=%s serve --config %s\n"
                      % (self.path("bin/triggers"), self.path("etc/triggers/triggers.toml")), unit)
        self.assertNotIn("@TRIGGERS_", unit, "an unreplaced @VARIABLE@")

    def test_unit_verifies(self):
        if not shutil.which("systemd-analyze"):
            self.skipTest("systemd-analyze is not installed (the systemd package)")
        env = dict(os.environ, MANPATH=self.path("share/man"), SYSTEMD_LOG_COLOR="0")
        p = subprocess.run(["systemd-analyze", "verify", self.path("lib/systemd/system/triggers.service")],
                           capture_output=True, text=True, timeout=60, env=env)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(p.stdout + p.stderr, "", "systemd-analyze verify warned")

    def test_server_runs_from_the_prefix(self):
        smoke.run(self.path("bin/triggers"), log=lambda s: None)

    def test_example_config_is_accepted_by_serve(self):
        binary = self.path("bin/triggers")
        if "--config" not in serve_flags(binary):
            self.skipTest("this binary has no `serve --config` yet")
        # Flags win over the file: the smoke run's --data-dir and --listen
        # replace the file's /var/lib/triggers and port 8080.
        smoke.run(binary, ["--config", self.path("etc/triggers/triggers.toml")], log=lambda s: None)

    def test_reinstall_keeps_an_edited_config(self):
        config = self.path("etc/triggers/triggers.toml")
        with open(config, "a") as f:
            f.write("# edited by the operator\n")
        log = install(self.prefix)
        with open(config) as f:
            self.assertTrue(f.read().endswith("# edited by the operator\n"))
        self.assertIn("Kept: " + config, log)

    def test_man_page_lists_every_serve_flag(self):
        text = render_man(self.path("share/man/man1/triggers.1"))
        if text is None:
            self.skipTest("man is not installed (man-db)")
        self.assertIn("triggers serve", text)
        for flag in serve_flags(BIN):
            self.assertIn(flag, text, "the man page lacks " + flag)
        for section in ["NAME", "SYNOPSIS", "DESCRIPTION", "COMMANDS", "FILES", "EXIT STATUS"]:
            self.assertRegex(text, r"(?m)^%s$" % section)

    def test_committed_man_page_is_current(self):
        # The same commands and options: the layout of --help differs between
        # CLI11 releases (Debian 12: "TEXT=./data", 13: "TEXT [./data]").
        generated = os.path.join(BUILD, "triggers.1")
        if not os.path.exists(generated):
            self.skipTest("this build does not generate the man page (no python3)")

        def outline(path):
            with open(path) as f:
                page = f.read()
            return (re.findall(r'(?m)^\.SS "(.*)"$', page),
                    sorted(set(re.findall(r"\\-\\-[a-z0-9\\-]+", page))))

        self.assertEqual(outline(generated), outline(os.path.join(REPO, "packaging", "triggers.1")),
                         "packaging/triggers.1 is out of date with the binary's --help: run `make man`")


if __name__ == "__main__":
    unittest.main()
