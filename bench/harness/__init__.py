"""What benchmarks and tests both use to drive the system from outside: free loopback ports and bounded waits
(``waiting``), the real ``ipoc`` CLI as subprocesses (``processes``), example policies built by the real
composition code (``policies``) and the VOD function's build, sample media and OpenCV reference (``vod``).

It lives here because ``bench/`` may import anything but ``tests/``, while tests may import anything
(``tests.support`` re-exports these modules under their old names).
"""
