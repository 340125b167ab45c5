"""``distutils.errors.DistutilsPlatformError`` (see ``__init__``)."""


class DistutilsError(Exception):
    pass


class DistutilsPlatformError(DistutilsError):
    pass
