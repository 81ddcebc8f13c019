"""The hostile-input table of the ``likeness`` command (issue 15): each case is what a careless user types, the
exit code the README promises and the one line that must name the value. tests/unit/test_hostile_cli.py runs
every case (plain and with --json) and checks that no file of the user changed; benchmarks/hostile_table.py
runs the same table against another checkout (e.g. main) to count tracebacks before and after.

Placeholders: {d} the sandbox folder, {ref} {tgt} good images, {out} an output folder, {py} nothing else.
Fake servers: {html} {http404} {nopack} {nomodels} {altmodels} (tests/fake_comfy.py).
"""

from __future__ import annotations

import hashlib
import json
import struct
import zlib
from pathlib import Path

from PIL import Image

R = ["--ref", "{ref}", "--target", "{tgt}", "-o", "{out}"]
S = ["--ref", "{ref}", "--before", "{tgt}", "--after", "{tgt}", "-o", "{out}"]
LOCAL = ["--server", "http://127.0.0.1:1", "--http-timeout", "0.2"]  # never reached by pre-server errors

# (id, argv, exit code, regex on the message line)
CASES: list[tuple[str, list[str], int, str]] = [
    # -- enhance: images
    ("enhance-ref-missing", ["enhance", "--ref", "{d}/nope.png", "--target", "{tgt}", *LOCAL], 2, r"reference image .*nope\.png.* does not exist"),
    ("enhance-ref-is-folder", ["enhance", "--ref", "{d}", "--target", "{tgt}", *LOCAL], 2, r"reference image .* does not exist"),
    ("enhance-target-corrupt", ["enhance", "--ref", "{ref}", "--target", "{d}/corrupt.png", *LOCAL], 2, r"target image .*corrupt\.png.* not a readable image"),
    ("enhance-target-text", ["enhance", "--ref", "{ref}", "--target", "{d}/text.png", *LOCAL], 2, r"not a readable image"),
    ("enhance-target-empty", ["enhance", "--ref", "{ref}", "--target", "{d}/empty.png", *LOCAL], 2, r"not a readable image"),
    ("enhance-target-1x1", ["enhance", "--ref", "{ref}", "--target", "{d}/tiny.png", *LOCAL], 2, r"1x1, smaller than 32 px"),
    ("enhance-ref-huge", ["enhance", "--ref", "{d}/huge.png", "--target", "{tgt}", *LOCAL], 2, r"huge\.png.* is over the 150 MP limit"),
    ("enhance-no-ref", ["enhance", "--target", "{tgt}", *LOCAL], 2, r"required: --ref"),
    ("enhance-ref2-whole", ["enhance", *R, "--ref2", "{ref}", *LOCAL], 2, r"--ref2 .* needs --mode crop"),
    ("enhance-mode-bogus", ["enhance", *R, "--mode", "zoom", *LOCAL], 2, r"--mode: invalid choice: 'zoom'"),
    ("enhance-unknown-flag", ["enhance", *R, "--stepz", "3", *LOCAL], 2, r"unrecognized arguments: --stepz"),
    # -- enhance: numbers
    ("steps-negative", ["enhance", *R, "--steps", "-3", *LOCAL], 2, r"--steps -3 is out of range: use 1\.\.10000"),
    ("steps-zero", ["enhance", *R, "--steps", "0", *LOCAL], 2, r"--steps 0 is out of range"),
    ("steps-text", ["enhance", *R, "--steps", "abc", *LOCAL], 2, r"--steps: invalid int value: 'abc'"),
    ("steps-huge", ["enhance", *R, "--steps", "100000", *LOCAL], 2, r"--steps 100000 is out of range"),
    ("denoise-2", ["enhance", *R, "--denoise", "2", *LOCAL], 2, r"--denoise 2\.0 is out of range: use 0\.0\.\.1\.0"),
    ("denoise-negative", ["enhance", *R, "--denoise", "-0.5", *LOCAL], 2, r"--denoise -0\.5 is out of range"),
    ("denoise-nan", ["enhance", *R, "--denoise", "nan", *LOCAL], 2, r"--denoise nan is not a finite number"),
    ("denoise-inf", ["enhance", *R, "--denoise", "inf", *LOCAL], 2, r"--denoise inf is not a finite number"),
    ("weight-99", ["enhance", *R, "--weight", "99", *LOCAL], 2, r"--weight 99\.0 is out of range: use 0\.0\.\.5\.0"),
    ("weight-negative", ["enhance", *R, "--weight", "-1", *LOCAL], 2, r"--weight -1\.0 is out of range"),
    ("weight-nan", ["enhance", *R, "--weight", "nan", *LOCAL], 2, r"--weight nan is not a finite number"),
    ("seed-negative", ["enhance", *R, "--seed", "-1", *LOCAL], 2, r"--seed -1 is out of range"),
    ("seed-too-big", ["enhance", *R, "--seed", str(2**64), *LOCAL], 2, r"--seed 18446744073709551616 is out of range"),
    ("seed-float", ["enhance", *R, "--seed", "1.5", *LOCAL], 2, r"--seed: invalid int value: '1\.5'"),
    ("max-tries-zero", ["enhance", *R, "--max-tries", "0", *LOCAL], 2, r"--max-tries 0 is out of range"),
    ("min-similarity-2", ["enhance", *R, "--min-similarity", "2", *LOCAL], 2, r"--min-similarity 2\.0 is out of range"),
    ("timeout-zero", ["enhance", *R, "--timeout", "0", *LOCAL], 2, r"--timeout 0\.0 is out of range"),
    ("http-timeout-negative", ["enhance", "--ref", "{ref}", "--target", "{tgt}", "--server", "http://127.0.0.1:1", "--http-timeout", "-1"], 2, r"--http-timeout -1\.0 is out of range"),
    ("server-wait-negative", ["enhance", *R, "--server-wait", "-5", *LOCAL], 2, r"--server-wait -5\.0 is out of range"),
    # -- enhance: names and folders
    ("name-parent", ["enhance", *R, "--name", "../x", *LOCAL], 2, r"--name '\.\./x' must be a plain file name.*try 'x'"),
    ("name-absolute", ["enhance", *R, "--name", "{d}/abs", *LOCAL], 2, r"--name '.*/abs' must be a plain file name"),
    ("name-subfolder", ["enhance", *R, "--name", "a/b", *LOCAL], 2, r"--name 'a/b' must be a plain file name.*try 'a_b'"),
    ("name-empty", ["enhance", *R, "--name", "", *LOCAL], 2, r"--name '' must be a plain file name"),
    ("name-dotdot", ["enhance", *R, "--name", "..", *LOCAL], 2, r"--name '\.\.' must be a plain file name"),
    ("name-newline", ["enhance", *R, "--name", "a\nb", *LOCAL], 2, r"--name 'a\\nb' must be a plain file name"),
    ("name-backslash", ["enhance", *R, "--name", "..\\..\\x", *LOCAL], 2, r"must be a plain file name"),
    ("name-reserved", ["enhance", *R, "--name", "NUL", *LOCAL], 2, r"--name 'NUL' must be a plain file name"),
    ("name-too-long", ["enhance", *R, "--name", "n" * 300, *LOCAL], 2, r"at most 100 characters"),
    ("output-is-file", ["enhance", "--ref", "{ref}", "--target", "{tgt}", "-o", "{d}/file.txt", *LOCAL], 2, r"--output .*file\.txt' is a file, not a folder"),
    ("output-under-file", ["enhance", "--ref", "{ref}", "--target", "{tgt}", "-o", "{d}/file.txt/sub", *LOCAL], 2, r"file\.txt' is a file, so the folder cannot be made"),
    ("journal-is-folder", ["enhance", *R, "--journal", "{d}", *LOCAL], 2, r"--journal .* is a folder"),
    ("journal-corrupt", ["enhance", *R, "--journal", "{d}/text.png", "--standins", "--server", "{altmodels}"], 2, r"text\.png is not a usable likeness journal"),
    ("comfyui-missing", ["enhance", *R, "--comfyui", "{d}/no_comfy"], 2, r"--comfyui .*no_comfy' is not a folder"),
    # -- enhance: servers and models
    ("server-no-scheme", ["enhance", *R, "--server", "localhost:8188"], 2, r"--server 'localhost:8188' is not an http\(s\) URL: write e\.g\. 'http://localhost:8188'"),
    ("server-ftp", ["enhance", *R, "--server", "ftp://example.org"], 2, r"--server 'ftp://example\.org' is not an http\(s\) URL"),
    ("server-bad-port", ["enhance", *R, "--server", "http://127.0.0.1:99999"], 2, r"has a bad port"),
    ("server-refused", ["enhance", *R, "--server", "http://127.0.0.1:1", "--http-timeout", "0.5"], 3, r"127\.0\.0\.1:1/system_stats failed"),
    ("server-html", ["enhance", *R, "--server", "{html}"], 3, r"answers HTTP but is not ComfyUI"),
    ("server-404", ["enhance", *R, "--server", "{http404}"], 3, r"answers HTTP 404 to /system_stats, so it is not ComfyUI"),
    ("server-without-pack", ["enhance", *R, "--server", "{nopack}"], 3, r"is ComfyUI but lacks the Likeness pack"),
    ("server-lacks-flux", ["enhance", *R, "--server", "{nomodels}"], 4, r"lacks model file\(s\) before anything was queued: 'flux1-dev\.safetensors' for 'Flux\.1-dev' \(models/diffusion_models"),
    ("server-upscaler-pick-missing", ["enhance", *R, "--server", "{altmodels}", "--upscaler", "nope.pth"], 4, r"--upscaler 'nope\.pth' is not in .*upscale_models; it has \['4x-UltraSharp\.pth'\]"),
    ("models-mistyped", ["enhance", *R, "--models", "{d}/modles"], 4, r"--models '.*modles' is not a folder"),
    ("models-empty", ["enhance", *R, "--models", "{d}/models_empty"], 4, r"lacks 11 model file\(s\): flux1-dev\.safetensors \(in diffusion_models/ or unet/\)"),
    ("models-alt-no-florence", ["enhance", *R, "--models", "{d}/models_alt"], 4, r"lacks 1 model file\(s\): Florence-2-large \(in LLM/\)"),
    ("models-no-upscaler", ["enhance", *R, "--models", "{d}/models_no_esrgan"], 4, r"no ESRGAN upscaler in .*upscale_models: put RealESRGAN_x4plus\.pth or 4x-UltraSharp\.pth there"),
    ("models-two-upscalers", ["enhance", *R, "--models", "{d}/models_two_esrgan"], 4, r"several upscalers \['a\.pth', 'b\.pth'\] .* pick one with --upscaler NAME"),
    # -- batch
    ("pairs-missing", ["batch", "--pairs", "{d}/nope.csv", "-o", "{out}", *LOCAL], 2, r"--pairs file .*nope\.csv' does not exist"),
    ("pairs-empty", ["batch", "--pairs", "{d}/empty.csv", "-o", "{out}", *LOCAL], 2, r"is empty: it needs a header row"),
    ("pairs-no-target-column", ["batch", "--pairs", "{d}/nocol.csv", "-o", "{out}", *LOCAL], 2, r"the header needs 'reference' and 'target' columns, found \['reference', 'image'\]"),
    ("pairs-latin1", ["batch", "--pairs", "{d}/latin1.csv", "-o", "{out}", *LOCAL], 2, r"is not UTF-8 text .* save it as CSV UTF-8"),
    ("pairs-bad-seed", ["batch", "--pairs", "{d}/badseed.csv", "-o", "{out}", *LOCAL], 2, r"row 1: seed 'abc' is not a whole number"),
    ("pairs-short-row", ["batch", "--pairs", "{d}/short.csv", "-o", "{out}", *LOCAL], 2, r"row 1: the 'target' cell is empty"),
    ("pairs-missing-image", ["batch", "--pairs", "{d}/missing_img.csv", "-o", "{out}", *LOCAL], 2, r"row 1: target image .*gone\.png.* does not exist"),
    ("pairs-name-traversal", ["batch", "--pairs", "{d}/traversal.csv", "-o", "{out}", *LOCAL], 2, r"row 1: name '\.\./\.\./x' must be a plain file name"),
    ("pairs-absolute-name", ["batch", "--pairs", "{d}/absname.csv", "-o", "{out}", *LOCAL], 2, r"row 1: name '/tmp/x' must be a plain file name"),
    ("pairs-all-bad", ["batch", "--pairs", "{d}/allbad.csv", "-o", "{out}", *LOCAL], 2, r"row 1: .*\(and 1 more bad rows; nothing to run\)"),
    ("pairs-and-folder", ["batch", "--pairs", "{d}/allbad.csv", "--folder", "{d}", *LOCAL], 2, r"not allowed with argument"),
    ("folder-missing", ["batch", "--folder", "{d}/nofolder", "-o", "{out}", *LOCAL], 2, r"--folder .*nofolder' is not a folder"),
    ("folder-two-targets", ["batch", "--folder", "{d}/pairs_bad", "-o", "{out}", *LOCAL], 2, r"expected one target\* image and ref\* images, found 2 target"),
    ("batch-workers-zero", ["batch", "--folder", "{d}/pairs_bad", "--workers", "0", "-o", "{out}", *LOCAL], 2, r"--workers 0 is out of range"),
    ("batch-servers-bad-url", ["batch", "--folder", "{d}/pairs_bad", "--ray", "--servers", "host1:8188", "-o", "{out}"], 2, r"--servers 'host1:8188' is not an http\(s\) URL"),
    # -- score
    ("score-before-missing", ["score", "--ref", "{ref}", "--before", "{d}/nope.png", "--after", "{tgt}", *LOCAL], 2, r"before image .*nope\.png.* does not exist"),
    ("score-after-corrupt", ["score", "--ref", "{ref}", "--before", "{tgt}", "--after", "{d}/corrupt.png", *LOCAL], 2, r"after image .* not a readable image"),
    ("score-name-traversal", ["score", *S, "--name", "../../etc/x", *LOCAL], 2, r"--name '\.\./\.\./etc/x' must be a plain file name"),
    ("score-server-no-scheme", ["score", *S, "--server", "127.0.0.1:8188"], 2, r"is not an http\(s\) URL"),
    ("score-no-ref", ["score", "--before", "{tgt}", "--after", "{tgt}", *LOCAL], 2, r"required: --ref"),
]

# eval / dataset run in a torch subprocess (slower): a few cases.
TOOL_CASES: list[tuple[str, list[str], int, str]] = [
    ("eval-missing-input", ["eval", "{d}/nothing", "-o", "{out}/e1"], 2, r"nothing"),
    ("eval-input-is-file", ["eval", "{d}/file.txt", "-o", "{out}/e2"], 2, r"file\.txt"),
    ("dataset-missing-folder", ["dataset", "{d}/nothing", "-o", "{out}/d1", "--trigger", "ohwx"], 2, r"nothing"),
    ("dataset-corrupt-only", ["dataset", "{d}/only_corrupt", "-o", "{out}/d2", "--trigger", "ohwx"], 2, r"no photo was kept of 1"),
]


def _png_header(w: int, h: int) -> bytes:
    """A PNG whose header claims w x h (the pixel data is a stub: it must be refused before decoding)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + chunk(b"IEND", b"")


def _touch(root: Path, rel: str, data: bytes = b"x") -> None:
    p = root / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)


def make_sandbox(d: Path) -> None:
    """The user's files every case runs beside (none of them may change)."""
    grad = Image.linear_gradient("L").resize((96, 96)).convert("RGB")
    grad.save(d / "ref.png")
    grad.rotate(90).save(d / "tgt.png")
    Image.new("RGB", (1, 1)).save(d / "tiny.png")
    (d / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    (d / "text.png").write_text("not an image\n")
    (d / "empty.png").write_bytes(b"")
    (d / "huge.png").write_bytes(_png_header(20000, 20000))
    (d / "file.txt").write_text("a user's file\n")
    (d / "empty.csv").write_text("\n\n")
    (d / "nocol.csv").write_text("reference,image\nref.png,tgt.png\n")
    (d / "latin1.csv").write_bytes("reference,target,name\nref.png,tgt.png,caf\xe9\n".encode("latin-1"))
    (d / "badseed.csv").write_text("\ufeffreference,target,seed\nref.png,tgt.png,abc\n")
    (d / "short.csv").write_text("reference,target,name\nref.png\n")
    (d / "missing_img.csv").write_text("reference,target\nref.png,gone.png\n")
    (d / "traversal.csv").write_text("reference,target,name\nref.png,tgt.png,../../x\n")
    (d / "absname.csv").write_text("reference,target,name\nref.png,tgt.png,/tmp/x\n")
    (d / "allbad.csv").write_text("reference,target,seed\nref.png,gone.png,1\nref.png,tgt.png,x\n")
    (d / "models_empty").mkdir()
    alt = {"unet/flux1-dev.safetensors", "clip/t5xxl_fp16.safetensors", "clip/clip_l.safetensors", "vae/ae.safetensors",
           "controlnet/diffusion_pytorch_model.safetensors", "pulid/pulid_flux_v0.9.1.safetensors",
           "clip_vision/EVA02_CLIP_L_336_psz14_s6B.pt", "insightface/models/antelopev2/scrfd_10g_bnkps.onnx",
           "insightface/models/buffalo_l/w600k_r50.onnx", "facexlib/parsing_bisenet.pth", "upscale_models/4x-UltraSharp.pth"}  # fmt: skip
    for rel in alt:
        _touch(d, f"models_alt/{rel}")
        if not rel.startswith("upscale_models"):
            for variant in ("models_no_esrgan", "models_two_esrgan", "models_full_alt"):
                _touch(d, f"{variant}/{rel}")
    _touch(d, "models_full_alt/upscale_models/4x-UltraSharp.pth")
    _touch(d, "models_full_alt/LLM/Florence-2-large/config.json", b"{}")
    _touch(d, "models_two_esrgan/upscale_models/a.pth")
    _touch(d, "models_two_esrgan/upscale_models/b.pth")
    for sub in ("models_no_esrgan", "models_two_esrgan"):
        _touch(d, f"{sub}/LLM/Florence-2-large/config.json", b"{}")
    (d / "pairs_bad" / "p1").mkdir(parents=True)
    grad.save(d / "pairs_bad" / "p1" / "ref_a.png")
    grad.save(d / "pairs_bad" / "p1" / "target_1.png")
    grad.save(d / "pairs_bad" / "p1" / "target_2.png")
    (d / "only_corrupt").mkdir()
    (d / "only_corrupt" / "a.jpg").write_bytes(b"\xff\xd8\xff" + b"\x00" * 30)


def snapshot(root: Path) -> dict[str, str]:
    """Every file under ``root`` (links not followed) -> sha256 of its bytes."""
    out = {}
    for p in sorted(root.rglob("*")):
        if p.is_file() and not p.is_symlink():
            out[str(p.relative_to(root))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def fill_argv(argv: list[str], values: dict[str, str]) -> list[str]:
    return [a.format(**values) if "{" in a and "}" in a else a for a in argv]


def json_objects(stdout: str) -> list:
    """The JSON objects on stdout (a well-behaved --json run prints exactly one line holding one)."""
    out = []
    for line in stdout.splitlines():
        if line.strip():
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append(None)
    return out
