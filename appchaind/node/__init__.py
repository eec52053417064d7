"""The validator node: p2p reactors, the consensus driver, block sync, status and metrics."""
