module rsslab/heap-churn

go 1.15
