"""dfbench.datasets: one adapter per public dataset and the embedded synthetic benchmark."""
