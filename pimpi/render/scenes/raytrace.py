"""A small ray tracer in NumPy: spheres on a checkered plane, shadows, mirror reflections.

Vectors are kept as separate x, y, z arrays and every dot product is written out, so
each pixel's colour depends only on its own ray: any split gives the same bytes.
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["render_raytrace", "SPHERES"]

# centre (x, y, z), radius, colour (r, g, b), reflectivity
SPHERES = (
    ((0.0, 1.0, 0.0), 1.0, (0.9, 0.9, 0.95), 0.8),
    ((-2.2, 0.7, 0.8), 0.7, (0.9, 0.25, 0.2), 0.15),
    ((2.0, 0.6, -0.6), 0.6, (0.2, 0.45, 0.9), 0.2),
    ((0.9, 0.35, 2.1), 0.35, (0.95, 0.8, 0.2), 0.1),
)
_LIGHT = (5.0, 8.0, 4.0)
_PLANE_REFLECT = 0.25
_MAX_DEPTH = 3
_EPS = 1e-6
_FAR = 1e30


def _dot(ax, ay, az, bx, by, bz):
    return ax * bx + ay * by + az * bz


def _normalise(x, y, z):
    length = np.sqrt(x * x + y * y + z * z)
    return x / length, y / length, z / length


def _hit_sphere(ox, oy, oz, dx, dy, dz, centre, radius):
    """Distance along each ray to the sphere, or _FAR."""
    px, py, pz = ox - centre[0], oy - centre[1], oz - centre[2]
    b = _dot(px, py, pz, dx, dy, dz)
    c = _dot(px, py, pz, px, py, pz) - radius * radius
    disc = b * b - c
    ok = disc > 0.0
    root = np.sqrt(np.where(ok, disc, 0.0))
    near = -b - root
    far = -b + root
    t = np.where(near > _EPS, near, far)
    return np.where(ok & (t > _EPS), t, _FAR)


def _hit_plane(oy, dy):
    with np.errstate(divide="ignore", invalid="ignore"):
        t = -oy / dy
    return np.where((dy < 0.0) & (t > _EPS), t, _FAR)


def _sky(dy):
    t = np.clip(dy, 0.0, 1.0)
    return (0.55 + 0.25 * t, 0.7 + 0.2 * t, 0.95 + 0.05 * t)


def _shadowed(px, py, pz):
    """True where the light is blocked by a sphere."""
    lx, ly, lz = _LIGHT[0] - px, _LIGHT[1] - py, _LIGHT[2] - pz
    dist = np.sqrt(lx * lx + ly * ly + lz * lz)
    lx, ly, lz = lx / dist, ly / dist, lz / dist
    blocked = np.zeros(px.shape, dtype=bool)
    for centre, radius, _, _ in SPHERES:
        t = _hit_sphere(px, py, pz, lx, ly, lz, centre, radius)
        blocked |= t < dist
    return blocked


def _trace(ox, oy, oz, dx, dy, dz, depth):
    """Colour (r, g, b arrays) seen along each ray."""
    best = _hit_plane(oy, dy)
    which = np.full(ox.shape, -1, dtype=np.int32)  # -1 plane, -2 sky, k sphere k
    for k, (centre, radius, _, _) in enumerate(SPHERES):
        t = _hit_sphere(ox, oy, oz, dx, dy, dz, centre, radius)
        closer = t < best
        best = np.where(closer, t, best)
        which = np.where(closer, k, which)
    which = np.where(best >= _FAR, -2, which)
    r, g, b = (np.array(c, dtype=np.float64) for c in _sky(dy))
    r, g, b = np.broadcast_to(r, ox.shape).copy(), np.broadcast_to(g, ox.shape).copy(), np.broadcast_to(b, ox.shape).copy()
    hit = np.flatnonzero(which != -2)
    if hit.size == 0:
        return r, g, b
    t = best[hit]
    px, py, pz = ox[hit] + t * dx[hit], oy[hit] + t * dy[hit], oz[hit] + t * dz[hit]
    kind = which[hit]
    # normals and surface colours
    nx, ny, nz = np.zeros(hit.size), np.ones(hit.size), np.zeros(hit.size)
    sr = np.empty(hit.size)
    sg = np.empty(hit.size)
    sb = np.empty(hit.size)
    refl = np.full(hit.size, _PLANE_REFLECT)
    plane = kind == -1
    checker = (np.floor(px[plane]) + np.floor(pz[plane])) % 2 == 0
    sr[plane] = np.where(checker, 0.85, 0.15)
    sg[plane] = np.where(checker, 0.85, 0.15)
    sb[plane] = np.where(checker, 0.8, 0.18)
    for k, (centre, radius, col, reflect) in enumerate(SPHERES):
        on = kind == k
        if not on.any():
            continue
        nx[on] = (px[on] - centre[0]) / radius
        ny[on] = (py[on] - centre[1]) / radius
        nz[on] = (pz[on] - centre[2]) / radius
        sr[on], sg[on], sb[on] = col
        refl[on] = reflect
    lx, ly, lz = _normalise(_LIGHT[0] - px, _LIGHT[1] - py, _LIGHT[2] - pz)
    diffuse = np.maximum(_dot(nx, ny, nz, lx, ly, lz), 0.0)
    lit = ~_shadowed(px + nx * 1e-4, py + ny * 1e-4, pz + nz * 1e-4)
    # reflected direction
    dn = _dot(dx[hit], dy[hit], dz[hit], nx, ny, nz)
    rx, ry, rz = dx[hit] - 2.0 * dn * nx, dy[hit] - 2.0 * dn * ny, dz[hit] - 2.0 * dn * nz
    spec = np.maximum(_dot(rx, ry, rz, lx, ly, lz), 0.0)
    spec = spec * spec
    spec = spec * spec
    spec = spec * spec
    spec = spec * spec
    spec = spec * spec  # ** 32 by squaring: exact, no libm pow
    light = 0.15 + 0.85 * diffuse * lit
    cr, cg, cb = sr * light, sg * light, sb * light
    shine = 0.6 * spec * lit
    cr, cg, cb = cr + shine, cg + shine, cb + shine
    if depth < _MAX_DEPTH:
        bounce = np.flatnonzero(refl > 0.0)
        if bounce.size:
            qr, qg, qb = _trace(px[bounce] + nx[bounce] * 1e-4, py[bounce] + ny[bounce] * 1e-4,
                                pz[bounce] + nz[bounce] * 1e-4, rx[bounce], ry[bounce], rz[bounce],
                                depth + 1)
            f = refl[bounce]
            cr[bounce] = cr[bounce] * (1.0 - f) + qr * f
            cg[bounce] = cg[bounce] * (1.0 - f) + qg * f
            cb[bounce] = cb[bounce] * (1.0 - f) + qb * f
    r[hit], g[hit], b[hit] = cr, cg, cb
    return r, g, b


def _camera(frame: int, n_frames: int) -> tuple[tuple[float, float, float], tuple, tuple, tuple]:
    """Eye position and the camera's forward, right and up axes: one orbit per animation."""
    angle = 2.0 * math.pi * frame / max(n_frames, 1)
    eye = (7.0 * math.sin(angle), 2.6, 7.0 * math.cos(angle))
    target = (0.0, 0.8, 0.0)
    fx, fy, fz = target[0] - eye[0], target[1] - eye[1], target[2] - eye[2]
    n = math.sqrt(fx * fx + fy * fy + fz * fz)
    fx, fy, fz = fx / n, fy / n, fz / n
    rx, ry, rz = -fz, 0.0, fx  # forward x world-up (0, 1, 0), sign chosen for +x right
    n = math.sqrt(rx * rx + rz * rz)
    rx, rz = rx / n, rz / n
    ux, uy, uz = ry * fz - rz * fy, rz * fx - rx * fz, rx * fy - ry * fx
    return eye, (fx, fy, fz), (rx, ry, rz), (ux, uy, uz)


def render_raytrace(frame: int, n_frames: int, width: int, height: int, rows: np.ndarray,
                    cols: np.ndarray) -> np.ndarray:
    """Pixels (len(rows), len(cols), 3) of the orbiting camera's frame."""
    eye, fwd, right, up = _camera(frame, n_frames)
    scale = 1.1 / height  # vertical field of view about 58 degrees
    u = (cols.astype(np.float64) - (width - 1) * 0.5) * scale
    v = ((height - 1) * 0.5 - rows.astype(np.float64)) * scale
    uu = np.broadcast_to(u[None, :], (rows.size, cols.size)).ravel()
    vv = np.broadcast_to(v[:, None], (rows.size, cols.size)).ravel()
    dx = fwd[0] + uu * right[0] + vv * up[0]
    dy = fwd[1] + uu * right[1] + vv * up[1]
    dz = fwd[2] + uu * right[2] + vv * up[2]
    dx, dy, dz = _normalise(dx, dy, dz)
    ox, oy, oz = (np.full(dx.shape, c) for c in eye)
    r, g, b = _trace(ox, oy, oz, dx, dy, dz, 0)
    rgb = np.stack([r, g, b], axis=-1)
    img = np.floor(np.clip(rgb, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)
    return img.reshape(rows.size, cols.size, 3)
