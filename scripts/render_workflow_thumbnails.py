"""Draw a JPEG thumbnail beside each UI workflow in workflows/ (same name, .jpg), from the JSON alone.

The editor's template browser shows ``/api/workflow_templates/<pack>/<name>.jpg`` as a custom pack's template
thumbnail (comfyui-frontend-package 1.32.9 and 1.58.1 both ask for .jpg), so the thumbnails are JPEG.

Group frames, node boxes at their saved pos/size with title bars and socket names, and links as curves
coloured by type, roughly as the ComfyUI editor draws them. A browser screenshot may replace these later.

    python scripts/render_workflow_thumbnails.py [--width 1600]
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

ROOT = Path(__file__).resolve().parent.parent
WORKFLOWS = ROOT / "workflows"
log = logging.getLogger("render_workflow_thumbnails")

TITLE_H, SLOT_H = 30, 20
BACKGROUND = (32, 32, 32)
NODE_BG, NODE_TITLE = (53, 53, 53), (34, 34, 34)
MUTED_ALPHA, BYPASS_BG = 0.45, (90, 40, 110)
LINK_COLORS = {
    "MODEL": (180, 160, 255), "CLIP": (255, 210, 50), "VAE": (255, 100, 100), "CONDITIONING": (255, 160, 50),
    "LATENT": (255, 150, 200), "IMAGE": (100, 180, 230), "MASK": (100, 220, 140), "CONTROL_NET": (0, 200, 140),
    "STRING": (120, 220, 120), "FLOAT": (170, 200, 80), "INT": (170, 200, 80),
}
OTHER_LINK = (200, 200, 200)


def _rgb(color: str | None, default: tuple[int, int, int]) -> tuple[int, int, int]:
    if not color or not color.startswith("#"):
        return default
    h = color[1:]
    if len(h) == 3:
        h = "".join(c * 2 for c in h)
    return tuple(int(h[i : i + 2], 16) for i in (0, 2, 4))


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.truetype("DejaVuSans.ttf", size)
    except OSError:
        return ImageFont.load_default(size=size)


def _bezier(p0, p3, steps: int = 24):
    dx = max(40.0, abs(p3[0] - p0[0]) * 0.5)
    p1, p2 = (p0[0] + dx, p0[1]), (p3[0] - dx, p3[1])
    pts = []
    for i in range(steps + 1):
        t = i / steps
        a, b, c, d = (1 - t) ** 3, 3 * (1 - t) ** 2 * t, 3 * (1 - t) * t**2, t**3
        pts.append((a * p0[0] + b * p1[0] + c * p2[0] + d * p3[0], a * p0[1] + b * p1[1] + c * p2[1] + d * p3[1]))
    return pts


def _fit(draw: ImageDraw.ImageDraw, text: str, font, width: float) -> str:
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def render(ui: dict, width: int = 1600, scale: float = 1.0) -> Image.Image:
    """Render a UI workflow to an RGB image ``width`` px wide (drawn at 2x, then downsampled)."""
    boxes = [(n["pos"][0], n["pos"][1] - TITLE_H, n["pos"][0] + n["size"][0], n["pos"][1] + n["size"][1]) for n in ui["nodes"]]
    boxes += [(g["bounding"][0], g["bounding"][1], g["bounding"][0] + g["bounding"][2], g["bounding"][1] + g["bounding"][3]) for g in ui.get("groups", [])]
    x0, y0 = min(b[0] for b in boxes) - 40, min(b[1] for b in boxes) - 40
    x1, y1 = max(b[2] for b in boxes) + 40, max(b[3] for b in boxes) + 40
    ss = 2 * width / (x1 - x0)  # supersampled scale

    def P(x, y):
        return ((x - x0) * ss, (y - y0) * ss)

    img = Image.new("RGB", (int((x1 - x0) * ss), int((y1 - y0) * ss)), BACKGROUND)
    draw = ImageDraw.Draw(img, "RGBA")
    f_group, f_title, f_slot = _font(int(24 * ss)), _font(int(15 * ss)), _font(int(12 * ss))

    for g in ui.get("groups", []):
        gx, gy, gw, gh = g["bounding"]
        col = _rgb(g.get("color"), (100, 100, 100))
        draw.rectangle([P(gx, gy), P(gx + gw, gy + gh)], fill=col + (50,), outline=col + (255,), width=max(1, int(2 * ss)))
        draw.rectangle([P(gx, gy), P(gx + gw, gy + 40)], fill=col + (110,))
        draw.text(P(gx + 10, gy + 8), _fit(draw, g["title"], f_group, (gw - 20) * ss), font=f_group, fill=(235, 235, 235))

    nodes = {n["id"]: n for n in ui["nodes"]}

    def out_pos(n, slot):
        return (n["pos"][0] + n["size"][0], n["pos"][1] + SLOT_H * slot + SLOT_H / 2)

    def in_pos(n, slot):
        return (n["pos"][0], n["pos"][1] + SLOT_H * slot + SLOT_H / 2)

    for _, src, s_slot, dst, d_slot, kind in ui.get("links", []):
        a, b = nodes[src], nodes[dst]
        col = LINK_COLORS.get(str(kind), OTHER_LINK)
        pts = [P(*p) for p in _bezier(out_pos(a, s_slot), in_pos(b, d_slot))]
        draw.line(pts, fill=col + (200,), width=max(1, int(2.5 * ss)), joint="curve")

    for n in ui["nodes"]:
        _draw_node(draw, n, P, (f_title, f_slot), ss, in_pos, out_pos)
    return img.resize((width, int(img.height * width / img.width)), Image.LANCZOS)


def _draw_node(draw, n: dict, P, fonts, ss: float, in_pos, out_pos) -> None:
    """One node box: title bar, sockets with their names, and the first widget values that fit."""
    f_title, f_slot = fonts
    x, y = n["pos"]
    w, h = n["size"]
    mode = n.get("mode", 0)
    bg = BYPASS_BG if mode == 4 else _rgb(n.get("bgcolor"), NODE_BG)
    tc = _rgb(n.get("color"), NODE_TITLE)
    alpha = int(255 * (MUTED_ALPHA if mode == 2 else 1.0))
    r = int(8 * ss)
    draw.rounded_rectangle([P(x, y - TITLE_H), P(x + w, y + h)], radius=r, fill=bg + (alpha,), outline=(0, 0, 0, 255))
    draw.rounded_rectangle([P(x, y - TITLE_H), P(x + w, y)], radius=r, fill=tc + (alpha,))
    draw.ellipse([P(x + 10, y - 20), P(x + 20, y - 10)], fill=(160, 160, 160))
    title = n.get("title") or n["type"]
    draw.text(P(x + 28, y - 24), _fit(draw, title, f_title, (w - 36) * ss), font=f_title, fill=(230, 230, 230))
    if n["type"] in ("Note", "MarkdownNote"):
        text = (n.get("widgets_values") or [""])[0]
        _wrap_text(draw, text, f_slot, P(x + 8, y + 6), (w - 16) * ss, (h - 12) * ss)
        return
    for i, s in enumerate(n.get("inputs") or []):
        cx, cy = P(*in_pos(n, i))
        col = LINK_COLORS.get(str(s.get("type")), OTHER_LINK)
        draw.ellipse([cx - 5 * ss, cy - 5 * ss, cx + 5 * ss, cy + 5 * ss], fill=col if s.get("link") else None, outline=col)
        draw.text((cx + 10 * ss, cy - 8 * ss), s["name"], font=f_slot, fill=(200, 200, 200))
    for i, s in enumerate(n.get("outputs") or []):
        cx, cy = P(*out_pos(n, i))
        col = LINK_COLORS.get(str(s.get("type")), OTHER_LINK)
        draw.ellipse([cx - 5 * ss, cy - 5 * ss, cx + 5 * ss, cy + 5 * ss], fill=col if s.get("links") else None, outline=col)
        tw = draw.textlength(s["name"], font=f_slot)
        draw.text((cx - 10 * ss - tw, cy - 8 * ss), s["name"], font=f_slot, fill=(200, 200, 200))
    rows = max(len(n.get("inputs") or []), len(n.get("outputs") or []))
    wy = y + rows * SLOT_H + 6
    for v in _shown_values(n):
        if wy + 20 > y + h:
            break
        draw.rounded_rectangle([P(x + 10, wy), P(x + w - 10, wy + 18)], radius=int(6 * ss), fill=(34, 34, 34))
        draw.text(P(x + 18, wy + 2), _fit(draw, str(v), f_slot, (w - 36) * ss), font=f_slot, fill=(170, 170, 170))
        wy += 24


def _shown_values(node: dict) -> list:
    values = node.get("widgets_values") or []
    return list(values.values()) if isinstance(values, dict) else list(values)


def _wrap_text(draw, text: str, font, origin, width: float, height: float) -> None:
    x, y = origin
    line_h = font.size * 1.25
    bottom = y + height
    for para in text.split("\n"):
        line = ""
        for word in para.split(" "):
            cand = f"{line} {word}".strip()
            if draw.textlength(cand, font=font) > width and line:
                if y + line_h > bottom:
                    return
                draw.text((x, y), line, font=font, fill=(230, 220, 200))
                y += line_h
                line = word
            else:
                line = cand
        if y + line_h > bottom:
            return
        draw.text((x, y), line, font=font, fill=(230, 220, 200))
        y += line_h


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--width", type=int, default=1600)
    args = ap.parse_args(argv)
    for path in sorted(WORKFLOWS.glob("*.json")):
        img = render(json.loads(path.read_text()), args.width)
        img.convert("RGB").save(path.with_suffix(".jpg"), quality=88, optimize=True)
        log.info("wrote %s (%dx%d)", path.with_suffix(".jpg").relative_to(ROOT), *img.size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
