"""churnloop: continuous training of a customer-churn model, run by Apache Airflow."""
