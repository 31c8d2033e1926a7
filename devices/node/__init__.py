"""The speaker cluster's node agent, run on the cluster's board as ``python -m devices.node``:
the amplifier relay, the node's state on MQTT, the hub's commands (deploy/node/README.md)."""
