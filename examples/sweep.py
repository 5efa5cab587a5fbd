"""Parameter sweep of a spatial SIR epidemic (NumPy), one simulation per process.

Written for one machine. On the cluster, change one line:
    from concurrent.futures import ProcessPoolExecutor   ->   from pimpi.futures import ProcessPoolExecutor
and start it with:  pimpi run -n 5 --hostfile hostfile -- -m pimpi.futures sweep.py --grid 8
"""

import argparse
import itertools

import numpy as np
from concurrent.futures import ProcessPoolExecutor


def simulate(beta, gamma, size=96, days=300):
    """Susceptible/infected/recovered fractions on a size x size grid, infection spreading to
    neighbours; returns (peak infected fraction, day of the peak, final recovered fraction)."""
    s = np.ones((size, size))
    i = np.zeros((size, size))
    i[size // 2, size // 2] = 0.5
    s -= i
    r = np.zeros((size, size))
    peak, peak_day = 0.0, 0
    for day in range(days):
        near = (i + 0.25 * (np.roll(i, 1, 0) + np.roll(i, -1, 0) + np.roll(i, 1, 1) + np.roll(i, -1, 1))) / 2.0
        new = beta * s * near
        healed = gamma * i
        s, i, r = s - new, i + new - healed, r + healed
        infected = float(i.mean())
        if infected > peak:
            peak, peak_day = infected, day
    return peak, peak_day, float(r.mean())


def run(params):
    beta, gamma, size, days = params
    return (beta, gamma) + simulate(beta, gamma, size, days)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--grid", type=int, default=6, help="values of beta and of gamma (grid x grid runs)")
    parser.add_argument("--size", type=int, default=96, help="cells per side")
    parser.add_argument("--days", type=int, default=300)
    args = parser.parse_args()
    betas = np.linspace(0.2, 0.8, args.grid)
    gammas = np.linspace(0.05, 0.3, args.grid)
    params = [(float(b), float(g), args.size, args.days) for b, g in itertools.product(betas, gammas)]
    with ProcessPoolExecutor() as executor:
        print("beta,gamma,peak_infected,peak_day,final_recovered")
        for beta, gamma, peak, day, final in executor.map(run, params):
            print(f"{beta:.4f},{gamma:.4f},{peak!r},{day},{final!r}")


if __name__ == "__main__":
    main()
