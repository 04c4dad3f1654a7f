"""Other tools' formats: MLflow tracking stores, model references and MLmodel export."""
