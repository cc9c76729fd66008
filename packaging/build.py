#!/usr/bin/env python3
"""Builds an appliance image from a profile (packaging/profiles/NAME.toml), offline.

usage: packaging/build.sh PROFILE [--out DIR] [--components DIR] [--no-components] [--ready-to-run|--no-ready-to-run]
                                  [--compression zst|gz] [--compression-level N] [--check]

Writes into DIR (default artifacts/): coracle-PROFILE.tar.zst (or .tar.gz), its .sha256, a CycloneDX 1.5 SBOM
(.cdx.json), a size report (.sizes.txt) and install.sh. Every check (profile, plugin names and architectures,
components lock and checksums) runs before anything is published; a failure is one line
`coracle: error: WHERE: WHAT; FIX` and exit 2 (1 when a tool such as dotnet fails).
"""
import argparse
import base64
import datetime
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import uuid

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PROFILES = os.path.join(ROOT, "packaging", "profiles")
LOCK = os.path.join(ROOT, "packaging", "components.lock")
RIDS = {"linux-x64": "x64", "linux-arm64": "arm64", "linux-arm": "arm"}
PROFILE_KEYS = {"description", "rid", "role", "plugins", "components", "ready-to-run", "compression", "compression-level", "appliance"}


class BuildError(Exception):
    def __init__(self, where, what, code=2):
        super().__init__(f"{where}: {what}")
        self.where, self.what, self.code = where, what, code


def rel(path):
    path = os.path.abspath(path)
    return os.path.relpath(path, ROOT) if path.startswith(ROOT + os.sep) else path


def say(line):
    print(line, flush=True)


# ---------------------------------------------------------------- plugins: read the [CoraclePlugin] attributes


def scan_plugins():
    """Every plugin export of the repo: name -> {project, assembly, short, point, architectures}, read from the
    [CoraclePlugin(...)] attributes of Plugins.*/ sources (the metadata the host selects by)."""
    points = dict(re.findall(r'const\s+string\s+(\w+)\s*=\s*"([^"]+)"', open(os.path.join(ROOT, "Plugins", "ExtensionPoints.cs"), encoding="utf-8").read()))
    found = {}
    for folder in sorted(os.listdir(ROOT)):
        if not folder.startswith("Plugins.") or not os.path.isdir(os.path.join(ROOT, folder)):
            continue
        projects = [f for f in os.listdir(os.path.join(ROOT, folder)) if f.endswith(".csproj")]
        if not projects:
            continue
        assembly = projects[0][: -len(".csproj")]
        for dirpath, dirnames, files in os.walk(os.path.join(ROOT, folder)):
            dirnames[:] = [d for d in dirnames if d not in ("bin", "obj")]
            for f in files:
                if not f.endswith(".cs"):
                    continue
                text = open(os.path.join(dirpath, f), encoding="utf-8").read()
                for m in re.finditer(r"\[CoraclePlugin\((.*?)\)\]\s*(?:\[|public|internal)", text, re.S):
                    args = m.group(1)
                    first = args.split(",", 1)[0].strip()
                    if first.startswith('"'):
                        name = first.strip('"')
                    else:
                        const = re.search(r"const\s+string\s+" + re.escape(first) + r"\s*=\s*\"([^\"]+)\"", text)
                        if not const:
                            raise BuildError(os.path.join(folder, f), f"cannot read the plugin name '{first}'; use a string literal or a const", 1)
                        name = const.group(1)
                    point = re.search(r"ExtensionPoints\.(\w+)", args)
                    archs = re.search(r"Architectures\s*=\s*(?:new\s*\[\]\s*\{([^}]*)\}|\[([^\]]*)\])", args)
                    arch_list = re.findall(r'"([^"]+)"', (archs.group(1) or archs.group(2))) if archs else []
                    found[name.lower()] = {
                        "name": name,
                        "project": os.path.join(folder, projects[0]),
                        "assembly": assembly,
                        "short": folder,
                        "point": points.get(point.group(1), point.group(1)) if point else "",
                        "architectures": arch_list,
                    }
    return found


# ---------------------------------------------------------------- profile and lock


def load_profile(arg):
    if arg.endswith(".toml") or os.sep in arg:
        path = os.path.abspath(arg)
        if not os.path.isfile(path):
            raise BuildError("packaging/build.sh", f"profile file {arg} does not exist; name one of {', '.join(profile_names())} or a .toml file")
    else:
        path = os.path.join(PROFILES, arg + ".toml")
        if not os.path.isfile(path):
            raise BuildError("packaging/build.sh", f"unknown profile '{arg}'; choose one of {', '.join(profile_names())} (packaging/profiles/)")
    where = rel(path)
    try:
        with open(path, "rb") as f:
            profile = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise BuildError(where, f"not valid TOML ({e}); fix the file")
    unknown = sorted(set(profile) - PROFILE_KEYS)
    if unknown:
        raise BuildError(where, f"unknown key '{unknown[0]}'; the keys are {', '.join(sorted(PROFILE_KEYS))}")
    rid = profile.get("rid")
    if rid not in RIDS:
        raise BuildError(where, f"rid '{rid}' is not supported; use one of {', '.join(RIDS)}")
    if profile.get("role", "server") not in ("server", "agent"):
        raise BuildError(where, f"role '{profile.get('role')}' is not server or agent; set role = \"server\" or \"agent\"")
    if not isinstance(profile.get("plugins"), list) or not profile["plugins"]:
        raise BuildError(where, "plugins is missing or empty; list the plugins the image carries by name (coracle plugins list)")
    if profile.get("compression", "zst") not in ("zst", "gz"):
        raise BuildError(where, f"compression '{profile.get('compression')}' is not zst or gz; set one of them")
    level = profile.get("compression-level", 12)
    if not isinstance(level, int) or isinstance(level, bool) or not 1 <= level <= 19:
        raise BuildError(where, f"compression-level {level!r} is not 1..19; set a zstd/gzip level (gzip uses at most 9)")
    name = os.path.basename(path)[: -len(".toml")]
    return name, where, profile


def profile_names():
    return sorted(f[:-5] for f in os.listdir(PROFILES) if f.endswith(".toml"))


def check_plugins(where, profile, known):
    rid, arch = profile["rid"], RIDS[profile["rid"]]
    chosen = {}
    for name in profile["plugins"]:
        entry = known.get(str(name).lower())
        if entry is None:
            raise BuildError(where, f"plugin '{name}' does not exist; the plugins are {', '.join(sorted(e['name'] for e in known.values()))}")
        if entry["architectures"] and arch not in entry["architectures"]:
            raise BuildError(where, f"plugin '{entry['name']}' does not support {rid} (it is built for {'/'.join(entry['architectures'])}); remove it from plugins")
        chosen[entry["name"]] = entry
    # One assembly may export several plugins (sqlite, postgres and mysql): the image carries the assembly, so all of them.
    assemblies = {e["assembly"] for e in chosen.values()}
    shipped = {e["name"]: e for e in known.values() if e["assembly"] in assemblies}
    for e in shipped.values():
        if e["architectures"] and arch not in e["architectures"]:
            raise BuildError(where, f"plugin '{e['name']}' (in {e['assembly']} with {', '.join(chosen)}) does not support {rid}; remove the plugins of that assembly")
    return chosen, shipped


def load_lock():
    try:
        with open(LOCK, "rb") as f:
            return tomllib.load(f).get("component", [])
    except tomllib.TOMLDecodeError as e:
        raise BuildError(rel(LOCK), f"not valid TOML ({e}); fix the file")


def sha256_file(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def check_components(where, profile, components_dir, no_components):
    wanted = profile.get("components", [])
    if no_components or not wanted:
        return []
    lock = load_lock()
    result = []
    for name in wanted:
        entry = next((c for c in lock if c["name"] == name and c["rid"] == profile["rid"]), None)
        if entry is None:
            raise BuildError(rel(LOCK), f"no {name} for {profile['rid']} (profile {rel(where)} needs it); add it to the lock and the components folder, or build with --no-components")
        path = os.path.join(components_dir, entry["path"])
        if not os.path.isfile(path):
            raise BuildError(path, f"missing: component {name} {entry['version']} for {profile['rid']} in {rel(LOCK)}; run scripts/test.sh or scripts/server.sh once to unpack ../shared/components, pass --components DIR, or build with --no-components")
        actual = sha256_file(path)
        if actual != entry["sha256"]:
            raise BuildError(path, f"sha256 {actual} does not match {rel(LOCK)} ({entry['sha256']}); replace the file with the locked {name} {entry['version']} or update the lock")
        result.append(dict(entry, file=path))
    return result


# ---------------------------------------------------------------- appliance.toml with the profile's overrides


def toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return str(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise ValueError(type(v))


def flatten(table, prefix=()):
    for k, v in table.items():
        if isinstance(v, dict):
            yield from flatten(v, prefix + (k,))
        else:
            yield prefix, k, v


def appliance_toml(where, profile, profile_name, shipped):
    """The repo's documented appliance.toml, without the tables of plugins the image does not carry, with the profile's
    [appliance] values in place of the defaults (each marked)."""
    text = open(os.path.join(ROOT, "appliance.toml"), encoding="utf-8").read()
    # Cut into (section, lines); drop [plugins.NAME] of plugins not shipped.
    sections, current, lines = [], "", []
    for line in text.splitlines():
        m = re.match(r"^\[([^\]]+)\]\s*$", line)
        if m:
            sections.append((current, lines))
            current, lines = m.group(1), []
        lines.append(line)
    sections.append((current, lines))
    names = {n.lower() for n in shipped}
    kept = [(s, l) for s, l in sections if not (s.startswith("plugins.") and s[len("plugins."):].lower() not in names)]
    # Trailing blank lines of a dropped table's predecessor stay; that is harmless.
    for path, key, value in flatten(profile.get("appliance", {})):
        section = ".".join(path)
        target = next((l for s, l in kept if s == section), None)
        if target is None:
            raise BuildError(where, f"[appliance.{section}] is not a table of this image's appliance.toml; use one of {', '.join('[appliance.' + s + ']' if s else '[appliance]' for s, _ in kept)}")
        index = next((i for i, line in enumerate(target) if re.match(r"^" + re.escape(key) + r"\s*=", line)), None)
        if index is None:
            shown = f"[appliance.{section}] {key}" if section else f"[appliance] {key}"
            raise BuildError(where, f"{shown} is not a key of appliance.toml; see 'coracle config default' for the keys")
        target[index] = f"{key} = {toml_value(value)}  # image default (profile {profile_name})"
    out = "\n".join(line for _, l in kept for line in l) + "\n"
    return out


# ---------------------------------------------------------------- publish, image, SBOM, sizes


def run(cmd, what, **kw):
    proc = subprocess.run(cmd, capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        detail = (proc.stdout + proc.stderr).strip().splitlines()
        errors = [l.strip() for l in detail if "error" in l.lower()] or detail[-3:] or ["no output"]
        first = errors[0]
        if "NU1101" in first and "Runtime" in first:
            raise BuildError(what, f"{first.split(': error ')[-1]}; the .NET runtime pack for this RID cannot be restored here, build this profile where NuGet serves it", 1)
        raise BuildError(what, f"failed (exit {proc.returncode}): {first}; run it by hand to see the whole output", 1)
    return proc.stdout


def publish(stage_lib, rid, shipped, r2r):
    keep = {e["short"] for e in shipped.values()}
    all_plugins = sorted({d for d in os.listdir(ROOT) if d.startswith("Plugins.") and any(f.endswith(".csproj") for f in os.listdir(os.path.join(ROOT, d)))})
    exclude = ";".join(p for p in all_plugins if p not in keep)
    cmd = ["dotnet", "publish", os.path.join(ROOT, "Core", "Coracle.Core.csproj"), "-c", "Release", "-r", rid,
           "--self-contained", "true", f"-p:PublishReadyToRun={'true' if r2r else 'false'}",
           f"-p:CoracleExcludePlugins=\"{exclude}\"", "-o", stage_lib, "-nologo", "-v:q", "-clp:ErrorsOnly"]
    # No -p:DebugType or -p:GenerateDocumentationFile here: global properties reach every project the publish builds, so
    # they would recompile the plugins' and the host's normal Release output in place (and the next build recompile
    # it back); symbols and XML docs are dropped from the stage instead.
    run(cmd, f"dotnet publish {rid}")
    # Symbols and XML docs are not for the device.
    for dirpath, _, files in os.walk(stage_lib):
        for f in files:
            if f.endswith(".pdb") or (f.endswith(".xml") and os.path.exists(os.path.join(dirpath, f[:-4] + ".dll"))):
                os.remove(os.path.join(dirpath, f))
    present = sorted(os.listdir(os.path.join(stage_lib, "plugins")))
    expected = sorted({e["assembly"] for e in shipped.values()})
    if present != expected:
        raise BuildError(f"dotnet publish {rid}", f"published plugins {present} are not the profile's {expected}; check CoracleExcludePlugins in build/PluginHost.targets", 1)


def dir_size(path):
    total = 0
    for dirpath, _, files in os.walk(path):
        for f in files:
            p = os.path.join(dirpath, f)
            if not os.path.islink(p):
                total += os.path.getsize(p)
    return total


def nuget_packages(stage_lib):
    """NuGet packages (and runtime packs) of the host and every plugin, from their *.deps.json."""
    packages = {}
    for dirpath, _, files in os.walk(stage_lib):
        for f in files:
            if not f.endswith(".deps.json"):
                continue
            owner = os.path.relpath(os.path.join(dirpath, f), stage_lib)
            deps = json.load(open(os.path.join(dirpath, f), encoding="utf-8"))
            for key, lib in deps.get("libraries", {}).items():
                if lib.get("type") not in ("package", "runtimepack"):
                    continue
                name, version = key.split("/", 1)
                name = name.removeprefix("runtimepack.")
                entry = packages.setdefault((name, version), {"sha512": lib.get("sha512", ""), "used-by": set()})
                entry["used-by"].add(owner.split(os.sep)[1] if owner.startswith("plugins" + os.sep) else "coracle")
    return packages


def sbom(image, stage_lib, components, version, profile_name, commit):
    def file_hash(path):
        return [{"alg": "SHA-256", "content": sha256_file(path)}]

    comps = [{
        "type": "application", "bom-ref": "coracle", "name": "coracle", "version": version,
        "description": "Coracle host (self-contained .NET apphost)",
        "hashes": file_hash(os.path.join(stage_lib, "coracle.dll")),
        "properties": [{"name": "coracle:path", "value": "usr/lib/coracle/coracle"}],
    }]
    for p in image["plugins"]:
        dll = os.path.join(stage_lib, "plugins", p["assembly"], p["assembly"] + ".dll")
        ref = "plugin:" + p["assembly"]
        if any(c["bom-ref"] == ref for c in comps):
            continue
        comps.append({
            "type": "library", "bom-ref": ref, "name": p["assembly"], "version": version,
            "description": "Coracle plugin assembly: " + ", ".join(q["name"] for q in image["plugins"] if q["assembly"] == p["assembly"]),
            "hashes": file_hash(dll),
            "properties": [{"name": "coracle:plugin", "value": q["name"]} for q in image["plugins"] if q["assembly"] == p["assembly"]]
                          + [{"name": "coracle:path", "value": f"usr/lib/coracle/plugins/{p['assembly']}/"}],
        })
    for (name, ver), info in sorted(nuget_packages(stage_lib).items()):
        c = {"type": "library", "bom-ref": f"pkg:nuget/{name}@{ver}", "name": name, "version": ver,
             "purl": f"pkg:nuget/{name}@{ver}",
             "properties": [{"name": "coracle:used-by", "value": u} for u in sorted(info["used-by"])]}
        if info["sha512"].startswith("sha512-"):
            c["hashes"] = [{"alg": "SHA-512", "content": base64.b64decode(info["sha512"][7:]).hex()}]
        comps.append(c)
    for c in components:
        comps.append({"type": "application", "bom-ref": "component:" + c["name"], "name": c["name"], "version": c["version"],
                      "hashes": [{"alg": "SHA-256", "content": c["sha256"]}],
                      "properties": [{"name": "coracle:path", "value": "usr/lib/coracle/bin/" + c["name"]},
                                     {"name": "coracle:source", "value": c.get("source", "")}]})
    return {
        "bomFormat": "CycloneDX", "specVersion": "1.5", "version": 1,
        "serialNumber": "urn:uuid:" + str(uuid.uuid5(uuid.NAMESPACE_URL, f"coracle/{profile_name}/{commit}/{image['readyToRun']}")),
        "metadata": {
            "timestamp": image["built"],
            "tools": {"components": [{"type": "application", "name": "packaging/build.py", "version": version}]},
            "component": {"type": "firmware", "bom-ref": "image", "name": f"coracle-{profile_name}", "version": version,
                          "properties": [{"name": "coracle:rid", "value": image["rid"]}, {"name": "coracle:commit", "value": commit}]},
        },
        "components": comps,
        "dependencies": [{"ref": "image", "dependsOn": [c["bom-ref"] for c in comps]}],
    }


def git(*args):
    try:
        return subprocess.run(["git", "-C", ROOT, *args], capture_output=True, text=True, check=True).stdout.strip()
    except (subprocess.CalledProcessError, FileNotFoundError):
        return ""


def main():
    parser = argparse.ArgumentParser(prog="packaging/build.sh", description="Build an appliance image from a profile.")
    parser.add_argument("profile")
    parser.add_argument("--out", default=os.path.join(ROOT, "artifacts"))
    parser.add_argument("--components", default=os.environ.get("CORACLE_COMPONENTS_CACHE", os.path.expanduser("~/.cache/coracle-components")))
    parser.add_argument("--no-components", action="store_true", help="build without the profile's components (said in the output and in image.json)")
    r2r = parser.add_mutually_exclusive_group()
    r2r.add_argument("--ready-to-run", dest="r2r", action="store_true", default=None)
    r2r.add_argument("--no-ready-to-run", dest="r2r", action="store_false")
    parser.add_argument("--compression", choices=["zst", "gz"])
    parser.add_argument("--compression-level", type=int, choices=range(1, 20), metavar="1..19", help="overrides the profile's compression-level")
    parser.add_argument("--check", action="store_true", help="check the profile, plugins and components; publish nothing")
    args = parser.parse_args()

    name, where, profile = load_profile(args.profile)
    known = scan_plugins()
    chosen, shipped = check_plugins(where, profile, known)
    components = check_components(where, profile, os.path.abspath(args.components), args.no_components)
    rid = profile["rid"]
    r2r_on = profile.get("ready-to-run", False) if args.r2r is None else args.r2r
    compression = args.compression or profile.get("compression", "zst")
    if args.compression_level is not None:
        profile["compression-level"] = args.compression_level
    extra = sorted(set(shipped) - set(chosen))
    toml_text = appliance_toml(where, profile, name, shipped)
    omitted = profile.get("components", []) if args.no_components else []

    say(f"==> profile {name}: {rid}, role {profile.get('role', 'server')}, ready-to-run {'on' if r2r_on else 'off'}")
    say(f"==> plugins: {', '.join(sorted(shipped))}" + (f" ({', '.join(extra)} come in the same assembly as a named plugin)" if extra else ""))
    if omitted:
        say(f"==> WITHOUT components (--no-components): {', '.join(omitted)} are not in this image; put them in /usr/lib/coracle/bin on the device")
    else:
        say(f"==> components: {', '.join(c['name'] + ' ' + c['version'] for c in components) or 'none'} (sha256 checked against {rel(LOCK)})")
    if args.check:
        say("==> check only: nothing published")
        return 0

    version = re.search(r"<Version>([^<]+)</Version>", open(os.path.join(ROOT, "Directory.Build.props")).read()).group(1)
    commit = git("rev-parse", "HEAD") or "unknown"
    epoch = int(os.environ.get("SOURCE_DATE_EPOCH") or git("log", "-1", "--format=%ct") or 0)
    os.makedirs(args.out, exist_ok=True)
    stage = tempfile.mkdtemp(prefix=f"coracle-image-{name}-")
    try:
        lib = os.path.join(stage, "usr", "lib", "coracle")
        say(f"==> dotnet publish {rid} (self-contained)")
        publish(lib, rid, shipped, r2r_on)
        os.makedirs(os.path.join(lib, "bin"), exist_ok=True)
        for c in components:
            dest = os.path.join(lib, "bin", c["name"])
            shutil.copyfile(c["file"], dest)
            os.chmod(dest, 0o755)
            if sha256_file(dest) != c["sha256"]:
                raise BuildError(dest, "changed while copying; build again", 1)
        with open(os.path.join(lib, "appliance.toml"), "w", encoding="utf-8") as f:
            f.write(toml_text)
        shutil.copyfile(os.path.join(ROOT, "README.md"), os.path.join(lib, "README.md"))
        shutil.copyfile(os.path.join(ROOT, "packaging", "install.sh"), os.path.join(lib, "install.sh"))
        os.chmod(os.path.join(lib, "install.sh"), 0o755)
        # The OTA boot guard and its systemd drop-in (docs/updates.md): install.sh puts them outside the slots.
        os.makedirs(os.path.join(lib, "update"), exist_ok=True)
        for f, mode in (("boot-guard", 0o755), ("coracle-update.conf", 0o644)):
            shutil.copyfile(os.path.join(ROOT, "packaging", "update", f), os.path.join(lib, "update", f))
            os.chmod(os.path.join(lib, "update", f), mode)
        image = {
            "schema": 1,
            "profile": name,
            "description": profile.get("description", ""),
            "rid": rid,
            "arch": RIDS[rid],
            "role": profile.get("role", "server"),
            "version": version,
            "commit": commit,
            "built": datetime.datetime.fromtimestamp(epoch, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "selfContained": True,
            "readyToRun": r2r_on,
            "plugins": [{"name": e["name"], "point": e["point"], "assembly": e["assembly"], "architectures": e["architectures"]}
                        for e in sorted(shipped.values(), key=lambda e: e["name"])],
            "components": [{"name": c["name"], "version": c["version"], "sha256": c["sha256"], "path": "bin/" + c["name"]} for c in components],
            "componentsOmitted": omitted,
        }
        with open(os.path.join(lib, "image.json"), "w", encoding="utf-8") as f:
            json.dump(image, f, indent=2)
            f.write("\n")
        for dirpath, dirnames, files in os.walk(stage):
            for d in dirnames:
                os.chmod(os.path.join(dirpath, d), 0o755)
            for f in files:
                p = os.path.join(dirpath, f)
                os.chmod(p, os.stat(p).st_mode & 0o755)

        base = os.path.join(args.out, f"coracle-{name}")
        tarball = f"{base}.tar.{compression}"
        say(f"==> {rel(tarball)}")
        tar = ["tar", "-C", stage, "--sort=name", "--owner=0", "--group=0", "--numeric-owner", f"--mtime=@{epoch}", "-cf", "-", "usr"]
        level = profile.get("compression-level", 12)
        squeeze = ["zstd", "-q", "-T0", f"-{level}", "--long=27", "-c"] if compression == "zst" else ["gzip", "-n", f"-{min(level, 9)}", "-c"]
        with open(tarball + ".part", "wb") as out:
            t = subprocess.Popen(tar, stdout=subprocess.PIPE)
            z = subprocess.Popen(squeeze, stdin=t.stdout, stdout=out)
            t.stdout.close()
            if z.wait() != 0 or t.wait() != 0:
                raise BuildError(tarball, "tar or compression failed; check the disk space", 1)
        os.replace(tarball + ".part", tarball)
        for other in ("zst", "gz"):
            if other != compression and os.path.exists(f"{base}.tar.{other}"):
                os.remove(f"{base}.tar.{other}")
                if os.path.exists(f"{base}.tar.{other}.sha256"):
                    os.remove(f"{base}.tar.{other}.sha256")
        digest = sha256_file(tarball)
        with open(tarball + ".sha256", "w") as f:
            f.write(f"{digest}  {os.path.basename(tarball)}\n")
        with open(base + ".cdx.json", "w", encoding="utf-8") as f:
            json.dump(sbom(image, lib, components, version, name, commit), f, indent=1)
            f.write("\n")
        shutil.copyfile(os.path.join(ROOT, "packaging", "install.sh"), os.path.join(args.out, "install.sh"))
        os.chmod(os.path.join(args.out, "install.sh"), 0o755)

        # Size report: the host (everything but plugins/ and bin/), each plugin folder, each component.
        rows = []
        plugins_size = dir_size(os.path.join(lib, "plugins"))
        bin_size = dir_size(os.path.join(lib, "bin"))
        installed = dir_size(lib)
        rows.append(("host", "coracle + .NET runtime", installed - plugins_size - bin_size))
        for a in sorted(os.listdir(os.path.join(lib, "plugins"))):
            rows.append(("plugin", a + " (" + ", ".join(p["name"] for p in image["plugins"] if p["assembly"] == a) + ")", dir_size(os.path.join(lib, "plugins", a))))
        for c in components:
            rows.append(("component", f"{c['name']} {c['version']}", os.path.getsize(os.path.join(lib, "bin", c["name"]))))
        compressed = os.path.getsize(tarball)
        with open(base + ".sizes.txt", "w") as f:
            f.write(f"# coracle-{name} ({rid}, ready-to-run {'on' if r2r_on else 'off'}): bytes installed per part\n")
            for kind, label, size in rows:
                f.write(f"{kind:<10} {size:>11}  {size / 1048576:7.1f} MiB  {label}\n")
            f.write(f"{'installed':<10} {installed:>11}  {installed / 1048576:7.1f} MiB  usr/lib/coracle\n")
            f.write(f"{'without-components':<10} {installed - bin_size:>11}  {(installed - bin_size) / 1048576:7.1f} MiB  usr/lib/coracle without bin/\n")
            f.write(f"{'compressed':<10} {compressed:>11}  {compressed / 1048576:7.1f} MiB  {os.path.basename(tarball)}\n")
        say(f"==> {os.path.basename(tarball)}: {compressed / 1048576:.1f} MiB compressed, {installed / 1048576:.1f} MiB installed; sha256 {digest}")
        say(f"==> also {rel(tarball)}.sha256, {rel(base)}.cdx.json (CycloneDX 1.5 SBOM), {rel(base)}.sizes.txt, {rel(os.path.join(args.out, 'install.sh'))}")
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BuildError as e:
        print(f"coracle: error: {e.where}: {e.what}", file=sys.stderr)
        sys.exit(e.code)
