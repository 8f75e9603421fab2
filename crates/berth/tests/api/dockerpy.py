"""docker-py (PyPI `docker`) against `berth serve` ($DOCKER_HOST): the calls a program makes,
each checked. Prints `dockerpy: N passed, 0 failed` and exits 0 when all pass."""
import io
import sys
import tarfile

import docker

IMAGE = sys.argv[1] if len(sys.argv) > 1 else "bb"
passed = 0


def check(what, cond, detail=""):
    global passed
    if not cond:
        print(f"dockerpy: FAILED: {what} {detail}", file=sys.stderr)
        sys.exit(1)
    passed += 1


c = docker.from_env(timeout=60)
check("ping", c.ping())
v = c.version()
check("version", v["ApiVersion"] == "1.45" and v["Os"] == "linux", v)
info = c.info()
check("info", info["Driver"] == "overlay2", info.get("Driver"))
check("images.list", any(f"{IMAGE}:latest" in i.tags for i in c.images.list()))

out = c.containers.run(IMAGE, ["sh", "-c", "echo from-run"], remove=True)
check("containers.run with remove", out == b"from-run\n", out)

ctr = c.containers.run(IMAGE, ["sh", "-c", "echo started; sleep 60"], detach=True, name="pyctr", labels={"t": "py"})
ctr.reload()
check("detached run", ctr.status == "running", ctr.status)
check("list by label", [x.name for x in c.containers.list(filters={"label": "t=py"})] == ["pyctr"])
code, output = ctr.exec_run(["sh", "-c", "echo exec-out; exit 4"])
check("exec_run", code == 4 and output == b"exec-out\n", (code, output))
code, output = ctr.exec_run("cat /etc/hostname", demux=False)
check("exec_run string", code == 0 and output.strip() == ctr.id[:12].encode(), output)

buf = io.BytesIO()
with tarfile.open(fileobj=buf, mode="w") as t:
    data = b"put by docker-py\n"
    info_ = tarfile.TarInfo("py.txt")
    info_.size = len(data)
    t.addfile(info_, io.BytesIO(data))
check("put_archive", ctr.put_archive("/tmp", buf.getvalue()))
stream, stat = ctr.get_archive("/tmp/py.txt")
raw = b"".join(stream)
with tarfile.open(fileobj=io.BytesIO(raw)) as t:
    got = t.extractfile("py.txt").read()
check("get_archive", got == b"put by docker-py\n" and stat["name"] == "py.txt", stat)

logs = ctr.logs()
check("logs", logs == b"started\n", logs)
check("top", any("sleep" in " ".join(p) for p in ctr.top()["Processes"]))
s = ctr.stats(stream=False)
check("stats", s["pids_stats"]["current"] >= 1, s["pids_stats"])
ctr.pause()
ctr.reload()
check("pause", ctr.status == "paused", ctr.status)
ctr.unpause()
ctr.rename("pyctr2")
ctr.reload()
check("rename", ctr.name == "pyctr2", ctr.name)
ctr.stop(timeout=1)
ctr.reload()
check("stop", ctr.status == "exited", ctr.status)
res = ctr.wait()
check("wait", res["StatusCode"] == 137 or res["StatusCode"] == 143, res)
ctr.remove()
check("removed", not c.containers.list(all=True, filters={"name": "pyctr2"}))

vol = c.volumes.create("pyvol", labels={"a": "b"})
check("volume create", vol.name == "pyvol" and c.volumes.get("pyvol").attrs["Labels"] == {"a": "b"})
vol.remove()
check("volume removed", "pyvol" not in [x.name for x in c.volumes.list()])

net = c.networks.create("pynet")
check("network create", c.networks.get("pynet").name == "pynet")
net.remove()

try:
    c.containers.get("no-such-container")
    check("not found", False)
except docker.errors.NotFound:
    check("not found", True)

ctx = io.BytesIO()
with tarfile.open(fileobj=ctx, mode="w:gz") as t:
    df = f"FROM {IMAGE}\nLABEL by=dockerpy\nRUN echo py-built > /b\n".encode()
    info_ = tarfile.TarInfo("Dockerfile")
    info_.size = len(df)
    t.addfile(info_, io.BytesIO(df))
ctx.seek(0)
img, log = c.images.build(fileobj=ctx, custom_context=True, encoding="gzip", tag="pybuilt:1", network_mode="none", rm=True)
check("build", "pybuilt:1" in img.tags and img.labels.get("by") == "dockerpy", (img.tags, list(log)))
out = c.containers.run("pybuilt:1", ["cat", "/b"], remove=True)
check("run built", out == b"py-built\n", out)
c.images.remove("pybuilt:1")

# What docker-py's own integration suite found (each once differed from dockerd).
ctr = c.containers.run(IMAGE, ["sleep", "300"], detach=True, environment=["BARE", "K=v"],
                       volumes={"/tmp": {"bind": "/mnt", "mode": "ro"}})
ctr.reload()
check("Cmd as given, no Entrypoint made up", ctr.attrs["Config"]["Cmd"] == ["sleep", "300"]
      and not ctr.attrs["Config"]["Entrypoint"], ctr.attrs["Config"])
check("a bare env name is kept", "BARE" in ctr.attrs["Config"]["Env"], ctr.attrs["Config"]["Env"])
mounts = [m for m in ctr.attrs["Mounts"] if m["Destination"] == "/mnt"]
check("Config.Volumes yields to the bind at the same path", len(mounts) == 1
      and mounts[0]["Type"] == "bind" and mounts[0]["Propagation"] == "rprivate"
      and mounts[0]["Mode"] == "ro" and not mounts[0]["RW"], ctr.attrs["Mounts"])
ctr.pause()
ctr.reload()
check("paused is still Running", ctr.attrs["State"]["Running"] and ctr.attrs["State"]["Paused"])
ctr.unpause()
eid = c.api.exec_create(ctr.id, ["echo", "framed"], tty=True, detach_keys="ctrl-x")["Id"]
framed = c.api.exec_start(eid, tty=False, demux=True)
check("exec framed by the start's Tty", framed[0] is not None and b"framed" in framed[0], framed)
eid = c.api.exec_create(ctr.id, ["echo", "on a terminal"], tty=True)["Id"]
raw = c.api.exec_start(eid, tty=True)
check("a terminal exec's newline is one \\r\\n", raw == b"on a terminal\r\n", raw)
ctr.kill()
ctr.reload()
check("kill answers once ended", ctr.status == "exited" and ctr.attrs["State"]["ExitCode"] == 137,
      (ctr.status, ctr.attrs["State"]))
ctr.remove()
check("networks.list", {"bridge", "host", "none"} <= {n.name for n in c.networks.list()})
c.api.leave_swarm(force=True)  # Docker's 503 "not a swarm manager" is taken as done
check("plugins", c.plugins.list() == [])

import tempfile, os
with tempfile.TemporaryDirectory() as ctxdir, tempfile.TemporaryDirectory() as outside:
    with open(os.path.join(ctxdir, "f"), "w") as fh:
        fh.write("in-context\n")
    df_path = os.path.join(outside, "Dockerfile")
    with open(df_path, "w") as fh:
        fh.write(f"FROM {IMAGE}\nCOPY f /f\n")
    img, _ = c.images.build(path=ctxdir, dockerfile=df_path, tag="pyoutside:1", network_mode="none", rm=True)
    out = c.containers.run("pyoutside:1", ["cat", "/f"], remove=True)
    check("build with a Dockerfile outside the context", out == b"in-context\n", out)
    c.images.remove("pyoutside:1")

# Races around a container's end that docker-py's suite met.
for _ in range(5):
    ct = c.api.create_container(IMAGE, "echo hello", host_config=c.api.create_host_config(network_mode="none"))
    c.api.start(ct)
    c.api.wait(ct, condition="not-running")
    out = c.api.attach(ct, stream=False, logs=True)
    check("attach with logs after the exit shows them", out == b"hello\n", out)
    c.api.remove_container(ct)
for _ in range(3):
    ct = c.api.create_container(IMAGE, "true", host_config=c.api.create_host_config(
        network_mode="none", restart_policy={"Name": "always"}))
    c.api.start(ct)
    c.api.wait(ct)
    try:
        c.api.remove_container(ct)
        check("a container its restart policy keeps is never shown exited", False)
    except docker.errors.APIError:
        check("a container its restart policy keeps is never shown exited", True)
    c.api.remove_container(ct, force=True)

c.images.get(IMAGE).tag("pyload", "a")
c.images.get(IMAGE).tag("pyload", "b")
r = c.api._get(c.api._url("/images/get"), params={"names": ["pyload:a", "pyload:b"]}, stream=True)
tarball = r.content
c.images.remove("pyload:a")
c.images.remove("pyload:b")
loaded = c.images.load(tarball)
check("load answers as a stream, one line per tag", len(loaded) == 2 and
      {t for i in loaded for t in i.tags if t.startswith("pyload")} == {"pyload:a", "pyload:b"},
      [i.tags for i in loaded])
c.images.remove("pyload:a")
c.images.remove("pyload:b")

since = int(__import__("time").time()) - 60
evs = list(c.events(since=since, until=int(__import__("time").time()) + 1, decode=True, filters={"type": "container", "event": "destroy"}))
check("events", any(e["Actor"]["Attributes"].get("name") == "pyctr2" for e in evs), evs)

print(f"dockerpy: {passed} passed, 0 failed")
