"""All exercise checks in one namespace, ``cvkit.grading.check``; each topic's checks live in its own module."""
from cvkit.grading.getting_started import *  # noqa: F401,F403
from cvkit.grading.boxes import *  # noqa: F401,F403
from cvkit.grading.nms_map import *  # noqa: F401,F403
from cvkit.grading.roi import *  # noqa: F401,F403
from cvkit.grading.selective_search import *  # noqa: F401,F403
from cvkit.grading.detection import *  # noqa: F401,F403
from cvkit.grading.upsampling import *  # noqa: F401,F403
from cvkit.grading.receptive_field import *  # noqa: F401,F403
from cvkit.grading.deform import *  # noqa: F401,F403
