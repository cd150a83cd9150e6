"""The one training path: a thin LightningModule, the trainer factory, callbacks and seeding."""
