"""`make deb`: the package packaging/make-deb builds from this build tree,
checked with dpkg-deb -I/-c, then unpacked with dpkg-deb -x into a temporary
root and its binary run from there (ctest packaging_deb). Installing it with
dpkg -i (postinst, the system user) is done by `make check-portable` in a
Debian 13 chroot, not here: it would change this machine."""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import smoke  # noqa: E402
from test_install import BUILD, REPO, render_man, serve_flags  # noqa: E402

EXPECTED_FILES = {
    "./usr/bin/triggers": "-rwxr-xr-x",
    "./usr/share/man/man1/triggers.1.gz": "-rw-r--r--",
    "./usr/lib/systemd/system/triggers.service": "-rw-r--r--",
    "./usr/lib/sysusers.d/triggers.conf": "-rw-r--r--",
    "./etc/triggers/triggers.toml": "-rw-r--r--",
    "./usr/share/doc/triggers/README.md": "-rw-r--r--",
    "./usr/share/doc/triggers/operations.md": "-rw-r--r--",
    "./usr/share/doc/triggers/api.md": "-rw-r--r--",
    "./usr/share/doc/triggers/examples/triggers.toml": "-rw-r--r--",
}


def run(cmd, **kw):
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=kw.pop("timeout", 180), **kw)
    if p.returncode != 0:
        raise AssertionError("%s exited %d:\n%s%s" % (" ".join(cmd), p.returncode, p.stdout, p.stderr))
    return p.stdout


def project_version():
    with open(os.path.join(BUILD, "CMakeCache.txt")) as f:
        return re.search(r"(?m)^CMAKE_PROJECT_VERSION:STATIC=(.*)$", f.read()).group(1)


class DebTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.work = tempfile.mkdtemp(prefix="triggers-deb-")
        out = run(["bash", os.path.join(REPO, "packaging", "make-deb"), BUILD,
                   os.path.join(cls.work, "out")], timeout=300)
        cls.deb = out.strip().splitlines()[-1]
        cls.root = os.path.join(cls.work, "root")
        run(["dpkg-deb", "-x", cls.deb, cls.root])

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.work, ignore_errors=True)

    def test_name_and_control_fields(self):
        arch = run(["dpkg", "--print-architecture"]).strip()
        self.assertEqual(os.path.basename(self.deb), "triggers_%s_%s.deb" % (project_version(), arch))
        info = run(["dpkg-deb", "-I", self.deb])
        fields = dict(re.findall(r"(?m)^ ([A-Z][A-Za-z-]+): (.*)$", info))
        self.assertEqual(fields["Package"], "triggers")
        self.assertEqual(fields["Version"], project_version())
        self.assertEqual(fields["Architecture"], arch)
        depends = [d.strip().split()[0] for d in fields["Depends"].split(",")]
        for lib in ["adduser", "libc6", "libsqlite3-0", "libpq5", "libssl3", "libcurl4"]:
            self.assertTrue(any(d == lib or d.startswith(lib) for d in depends),
                            "Depends lacks %s: %s" % (lib, fields["Depends"]))
        for script in ["postinst", "prerm", "postrm", "conffiles"]:
            self.assertRegex(info, r"(?m)^\s+\d+ bytes,\s+\d+ lines\s+\*?\s*%s\b" % script)

    def test_conffile_and_maintainer_scripts(self):
        control = os.path.join(self.work, "control")
        run(["dpkg-deb", "-e", self.deb, control])
        with open(os.path.join(control, "conffiles")) as f:
            self.assertEqual(f.read().split(), ["/etc/triggers/triggers.toml"])
        for script in ["postinst", "prerm", "postrm"]:
            path = os.path.join(control, script)
            self.assertTrue(os.access(path, os.X_OK), script)
            run(["sh", "-n", path])
        with open(os.path.join(control, "postinst")) as f:
            self.assertIn("adduser --system --group --home /var/lib/triggers", f.read())

    def test_contents_owners_and_modes(self):
        listing = run(["dpkg-deb", "-c", self.deb])
        files = {}
        for line in listing.splitlines():
            mode, owner, _size, _date, _time, name = line.split(None, 5)
            self.assertEqual(owner, "root/root", line)
            if not mode.startswith("d"):
                files[name] = mode
        self.assertEqual(files, EXPECTED_FILES)

    def test_unit_and_config_paths(self):
        with open(os.path.join(self.root, "usr/lib/systemd/system/triggers.service")) as f:
            unit = f.read()
        for line in ["ExecStart=/usr/bin/triggers serve --config /etc/triggers/triggers.toml",
                     "User=triggers", "StateDirectory=triggers", "UMask=0077",
                     "ProtectSystem=strict", "NoNewPrivileges=yes", "PrivateTmp=yes"]:
            self.assertIn("\n" + line + "\n", unit)
        with open(os.path.join(self.root, "etc/triggers/triggers.toml")) as f:
            config = f.read()
        self.assertIn('\ndata-dir = "/var/lib/triggers"\n', config)

    def test_unit_verifies(self):
        if not shutil.which("systemd-analyze"):
            self.skipTest("systemd-analyze is not installed (the systemd package)")
        # The unit as packaged, with ExecStart= pointing at the unpacked binary
        # (verify checks that it is executable) and man: at the unpacked page.
        with open(os.path.join(self.root, "usr/lib/systemd/system/triggers.service")) as f:
            unit = f.read().replace("ExecStart=/usr/bin/triggers",
                                    "ExecStart=" + os.path.join(self.root, "usr/bin/triggers"))
        units = os.path.join(self.work, "units")
        os.makedirs(units, exist_ok=True)
        with open(os.path.join(units, "triggers.service"), "w") as f:
            f.write(unit)
        env = dict(os.environ, MANPATH=os.path.join(self.root, "usr/share/man"), SYSTEMD_LOG_COLOR="0")
        p = subprocess.run(["systemd-analyze", "verify", os.path.join(units, "triggers.service")],
                           capture_output=True, text=True, timeout=60, env=env)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertEqual(p.stdout + p.stderr, "", "systemd-analyze verify warned")

    def test_binary_runs_from_the_unpacked_root(self):
        smoke.run(os.path.join(self.root, "usr/bin/triggers"), log=lambda s: None)

    def test_man_page_renders(self):
        text = render_man(os.path.join(self.root, "usr/share/man/man1/triggers.1.gz"))
        if text is None:
            self.skipTest("man is not installed (man-db)")
        for flag in serve_flags(os.path.join(self.root, "usr/bin/triggers")):
            self.assertIn(flag, text)


if __name__ == "__main__":
    unittest.main()
