"""Provider adapters: one package per platform, each with client, reader, writer and rules."""
