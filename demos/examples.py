"""Example images for the domain tab, drawn here so that no data-set image ships with the app.

Each imitates one PACS domain: a black-on-white line sketch, a flat-colour cartoon, a
brush-stroke painting and a softly lit, noisy "photo". The drawings are committed as small PNGs
in demos/example_images/ (the app only reads them); ``python -m demos.examples`` redraws them, and a
test checks that the committed files are exactly what these functions draw.
"""

import random
from pathlib import Path

from PIL import Image, ImageDraw, ImageFilter

SIZE = 256


def sketch() -> Image.Image:
    """A house under a tree, in pencil lines on white paper."""
    image = Image.new("RGB", (SIZE, SIZE), "white")
    draw = ImageDraw.Draw(image)
    ink = (30, 30, 30)
    draw.rectangle((50, 120, 160, 220), outline=ink, width=3)
    draw.line((40, 125, 105, 60, 170, 125), fill=ink, width=3)
    draw.rectangle((90, 165, 120, 220), outline=ink, width=2)
    draw.rectangle((60, 140, 82, 162), outline=ink, width=2)
    draw.rectangle((130, 140, 152, 162), outline=ink, width=2)
    draw.line((200, 220, 200, 150), fill=ink, width=3)
    draw.ellipse((170, 90, 235, 160), outline=ink, width=2)
    rng = random.Random(0)
    for _ in range(25):  # hatching, as a pencil would leave
        x, y = rng.randint(175, 225), rng.randint(100, 150)
        draw.line((x, y, x + 8, y - 8), fill=(90, 90, 90), width=1)
    draw.line((10, 222, 246, 222), fill=ink, width=2)
    return image


def cartoon() -> Image.Image:
    """A smiling sun over a green hill: flat colours, thick black outlines."""
    image = Image.new("RGB", (SIZE, SIZE), (110, 190, 250))
    draw = ImageDraw.Draw(image)
    draw.ellipse((-60, 160, 320, 400), fill=(90, 200, 80), outline="black", width=5)
    draw.ellipse((70, 40, 186, 156), fill=(255, 215, 40), outline="black", width=5)
    draw.ellipse((100, 78, 116, 98), fill="black")
    draw.ellipse((140, 78, 156, 98), fill="black")
    draw.arc((98, 90, 158, 136), start=20, end=160, fill="black", width=5)
    draw.ellipse((30, 200, 60, 230), fill=(240, 70, 90), outline="black", width=4)
    draw.ellipse((190, 205, 220, 235), fill=(250, 140, 40), outline="black", width=4)
    return image


def painting() -> Image.Image:
    """An evening landscape in short, overlapping brush strokes, slightly blurred like oil paint."""
    image = Image.new("RGB", (SIZE, SIZE), (60, 50, 90))
    draw = ImageDraw.Draw(image)
    rng = random.Random(1)
    for _ in range(1400):
        x, y = rng.randint(0, SIZE), rng.randint(0, SIZE)
        if y < 140:  # sky: warm at the horizon, violet above
            t = y / 140
            base = (int(90 + 150 * t), int(60 + 90 * t), int(140 - 60 * t))
        else:  # fields
            base = (int(40 + 60 * rng.random()), int(90 + 60 * rng.random()), 40)
        colour = tuple(max(0, min(255, c + rng.randint(-25, 25))) for c in base)
        length = rng.randint(6, 18)
        draw.line((x, y, x + length, y + rng.randint(-3, 3)), fill=colour, width=rng.randint(3, 6))
    draw.ellipse((160, 95, 200, 135), fill=(250, 200, 90))
    return image.filter(ImageFilter.GaussianBlur(1.2))


def photo() -> Image.Image:
    """A grey ball on a table under soft light, with sensor noise: smooth shading, no outlines."""
    image = Image.new("RGB", (SIZE, SIZE))
    pixels = image.load()
    rng = random.Random(2)
    cx, cy, r = 128, 120, 60
    for y in range(SIZE):
        for x in range(SIZE):
            if (x - cx) ** 2 + (y - cy) ** 2 <= r * r:
                light = max(0.0, 1 - (((x - cx + 25) ** 2 + (y - cy + 25) ** 2) ** 0.5) / (1.6 * r))
                value = 70 + 170 * light
                colour = (value, value * 0.97, value * 0.93)
            elif y > 165:  # table top, darker towards the viewer, with the ball's shadow
                shade = 150 - (y - 165) * 0.6
                if ((x - cx - 20) / 70) ** 2 + ((y - 185) / 14) ** 2 < 1:
                    shade *= 0.55
                colour = (shade * 0.85, shade * 0.65, shade * 0.45)
            else:  # wall, lit from the upper left
                shade = 200 - 0.25 * x - 0.15 * y
                colour = (shade, shade, shade * 1.02)
            noise = rng.gauss(0, 6)
            pixels[x, y] = tuple(max(0, min(255, int(c + noise))) for c in colour)
    return image.filter(ImageFilter.GaussianBlur(0.6))


DRAWINGS = {"sketch": sketch, "cartoon": cartoon, "painting": painting, "photo": photo}


EXAMPLES_DIR = Path(__file__).parent / "example_images"


def example_images() -> list[Path]:
    """The committed drawings, in DRAWINGS order."""
    return [EXAMPLES_DIR / f"{name}.png" for name in DRAWINGS]


def main() -> None:
    EXAMPLES_DIR.mkdir(exist_ok=True)
    for name, draw in DRAWINGS.items():
        draw().save(EXAMPLES_DIR / f"{name}.png", optimize=True)
        print(f"wrote {EXAMPLES_DIR / name}.png")


if __name__ == "__main__":
    main()
