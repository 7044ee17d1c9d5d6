"""Image input and output: any common file or array in, float RGB in [0, 1] inside, PNG/JPEG out."""

import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, PngImagePlugin, UnidentifiedImageError

from sanet.errors import SANetError
from sanet.files import check_output_file

WRITERS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}
ImageLike = Image.Image | np.ndarray


def to_rgb_array(image: ImageLike) -> np.ndarray:
    """A PIL image or an array ([H, W], [H, W, 1|3|4]; uint8, uint16 or float in [0, 1])
    -> float32 [H, W, 3] in [0, 1]. Transparency is composited on white."""
    if isinstance(image, Image.Image):
        return _pil_to_array(image)
    array = np.asarray(image)
    if array.dtype == np.uint8:
        array = array.astype(np.float32) / 255.0
    elif array.dtype == np.uint16:
        array = array.astype(np.float32) / 65535.0
    elif np.issubdtype(array.dtype, np.floating):
        array = array.astype(np.float32)
    else:
        raise SANetError(f"unsupported array type {array.dtype}: use uint8, uint16 or float")
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3 or array.shape[2] not in (1, 3, 4):
        raise SANetError(f"unsupported array shape {array.shape}: expected [H, W] or [H, W, 1|3|4]")
    if array.shape[2] == 4:
        alpha = array[:, :, 3:]
        array = array[:, :, :3] * alpha + (1.0 - alpha)
    if array.shape[2] == 1:
        array = np.repeat(array, 3, axis=2)
    if not np.isfinite(array).all():
        raise SANetError("the image array holds NaN or infinite values")
    return np.ascontiguousarray(np.clip(array, 0.0, 1.0))


def _pil_to_array(image: Image.Image) -> np.ndarray:
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        # 16-bit grayscale: keep the full precision instead of Pillow's 8-bit conversion.
        return to_rgb_array(np.asarray(image).astype(np.float32) / 65535.0)
    if image.mode == "F":
        return to_rgb_array(np.asarray(image, dtype=np.float32))
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    return to_rgb_array(np.asarray(image.convert("RGBA" if has_alpha else "RGB")))


def read_image(path: Path) -> np.ndarray:
    """Read a JPEG, PNG or WebP file (any mode, EXIF orientation applied) as float32 [H, W, 3].

    Pillow guards against decompression bombs: it warns above 89 megapixels, which a camera's
    photo can be (the memory budget decides what is computed), and refuses twice that."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image.load()
                return _pil_to_array(image)
    except Image.DecompressionBombError:
        limit = 2 * Image.MAX_IMAGE_PIXELS // 10**6
        raise SANetError(f"{path}: too large: images over {limit} megapixels are refused") from None
    except FileNotFoundError:
        raise SANetError(f"{path}: no such file") from None
    except IsADirectoryError:
        raise SANetError(f"{path}: is a directory, not an image") from None
    except UnidentifiedImageError:
        raise SANetError(f"{path}: not an image (JPEG, PNG or WebP expected)") from None
    except (OSError, ValueError, SyntaxError) as error:
        raise SANetError(f"{path}: damaged or unreadable image ({error})") from None


def check_output_path(path: Path) -> None:
    """Fail before any work if `path` has no supported extension or cannot be written."""
    if path.suffix.lower() not in WRITERS:
        raise SANetError(f"{path}: output must end in .png, .jpg or .jpeg")
    check_output_file(path)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_image(array: np.ndarray, path: Path, note: str = "") -> None:
    """Write float [H, W, 3] in [0, 1] as PNG or JPEG (by extension), atomically.

    `note` goes into the PNG's Comment text chunk (e.g. that the weights were untrained).
    """
    check_output_path(path)
    pixels = np.round(np.clip(array, 0.0, 1.0) * 255.0).astype(np.uint8)
    image = Image.fromarray(pixels, "RGB")
    file_format = WRITERS[path.suffix.lower()]
    options: dict[str, object] = {"quality": 95} if file_format == "JPEG" else {}
    if note and file_format == "PNG":
        info = PngImagePlugin.PngInfo()
        info.add_text("Comment", note)
        options["pnginfo"] = info
    descriptor, partial = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent or ".")
    try:
        with os.fdopen(descriptor, "wb") as stream:
            image.save(stream, format=file_format, **options)
        os.chmod(partial, 0o666 & ~_umask())  # mkstemp's 0600 would surprise the user
        os.replace(partial, path)
    except OSError as error:
        raise SANetError(f"{path}: could not write ({error.strerror or error})") from None
    finally:
        Path(partial).unlink(missing_ok=True)
