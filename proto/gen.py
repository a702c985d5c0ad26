#!/usr/bin/env python3
# Runs protoc-c on the omni.v1 schema and flattens its output into meson's output dir,
# and mirrors the headers under omni/v1/ so "#include <omni/v1/x.pb-c.h>" resolves in the build dir.
import os, shutil, subprocess, sys, tempfile

protoc, srcdir, builddir, outdir, *inputs = sys.argv[1:]
with tempfile.TemporaryDirectory() as tmp:
    srcdir = os.path.abspath(srcdir)
    subprocess.check_call([protoc, '--c_out=' + tmp, '-I' + srcdir] + [os.path.abspath(i) for i in inputs])
    mirror = os.path.join(builddir, 'omni', 'v1')
    os.makedirs(mirror, exist_ok=True)
    for name in os.listdir(os.path.join(tmp, 'omni', 'v1')):
        src = os.path.join(tmp, 'omni', 'v1', name)
        shutil.copyfile(src, os.path.join(outdir, name))
        if name.endswith('.h'):
            shutil.copyfile(src, os.path.join(mirror, name))
