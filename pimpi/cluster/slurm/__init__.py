"""Slurm: pimpi jobs inside allocations, as batch jobs, and the Slurm view of the doctor."""
