"""Distributed rendering: built-in scenes, any per-frame renderer, chunked video encoding.

Rooms: `cli` (the `pimpi render` commands), `job` (built-in scenes across ranks, resumable;
`check_arguments` is the one check of a scene render), `static` (Scatterv/Gatherv
splits), `cmd` (any renderer over chunks of frames), `transcode` and `ffmpeg` (video),
`journal` (resume), `png`, `progress`, `report`, `framespec`, `scenes/`. The dynamic
schedule is the task farm of `pimpi.tasks`; render imports it, never the reverse.
"""
