"""envsync keeps the environment variables of Render and Netlify equal to one canonical set.

This module stays nearly empty on purpose: `envsync --version` imports only it, so the
library's public names are imported from their own modules (`envsync.engine`,
`envsync.config`, `envsync.model`).
"""

__version__ = "0.1.0"
