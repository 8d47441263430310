"""Media in and out: what users send us and what we send back.

Inputs are judged by their bytes, never by their names or claimed types: a file
is sniffed (`sniff`), then probed (`probe`: Pillow for images, PyAV for videos)
against the operator's limits before any quota is spent. A picture's header is
checked (`limits`: sides, shape, pixels, the memory its decode takes) before a byte
of it is decoded, and it is decoded once, reduced as it goes (`images`). Probing and
preparing run under a per-process budget (`in_budget`). Downloads (`fetch`) refuse
to reach private networks (`guard`) and keep credentials on the hosts they belong to.

Outputs are probed, fitted under a platform's upload limit by re-encoding when
needed (`fit`), and cut into frames (`frames`: the last frame for Continue, a
poster when a video cannot be uploaded). `scratch` owns the temporary files.

CPU-heavy functions are synchronous; async callers run them in a thread.
Import from here: the modules behind these names may move.
"""

from bot.media.budget import in_budget
from bot.media.fetch import MAX_REDIRECTS, BackendFileError, Fetcher, local_path, safe_source
from bot.media.fit import (
    X264_PRESET,
    FitPlan,
    FitResult,
    FitSource,
    fit_video,
    plan_fit,
    read_source,
)
from bot.media.frames import last_frame, poster_frame
from bot.media.guard import backend_hosts
from bot.media.headers import ImageHeader, image_header, image_header_size
from bot.media.images import parse_aspect, prepare_image, target_size
from bot.media.limits import ImageLimits
from bot.media.probe import probe, probe_input, probe_output
from bot.media.scratch import cleanup_stale, release_work_dir, scratch_dir, temp_root, work_dir
from bot.media.sizes import MiB, format_size
from bot.media.sniff import (
    ACCEPTED,
    FORMATS,
    IMAGE_FORMATS,
    kind_from_hint,
    kind_of_file,
    sniff,
    sniff_bytes,
)

__all__ = [
    "ACCEPTED",
    "FORMATS",
    "IMAGE_FORMATS",
    "MAX_REDIRECTS",
    "X264_PRESET",
    "BackendFileError",
    "Fetcher",
    "FitPlan",
    "FitResult",
    "FitSource",
    "ImageHeader",
    "ImageLimits",
    "MiB",
    "backend_hosts",
    "cleanup_stale",
    "fit_video",
    "format_size",
    "image_header",
    "image_header_size",
    "in_budget",
    "kind_from_hint",
    "kind_of_file",
    "last_frame",
    "local_path",
    "parse_aspect",
    "plan_fit",
    "poster_frame",
    "prepare_image",
    "probe",
    "probe_input",
    "probe_output",
    "read_source",
    "release_work_dir",
    "safe_source",
    "scratch_dir",
    "sniff",
    "sniff_bytes",
    "target_size",
    "temp_root",
    "work_dir",
]
