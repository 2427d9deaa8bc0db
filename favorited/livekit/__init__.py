"""LiveKit adapters over livekit-api: the room gateway and the access-token minter."""
