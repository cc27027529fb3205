"""kktbridge: fiscal registers (54-ФЗ) and bank terminals for web applications.

The layers, each importing only the ones above it: fiscal, bitapi, devices, emulators, driver, cloud, web/cli.
See ARCHITECTURE in the repository and docs/ for the rule of each package.
"""

__version__ = "0.1.0"
