module race-growth

go 1.15
