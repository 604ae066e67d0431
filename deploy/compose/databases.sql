-- One database per partner node, made when the PostgreSQL volume is first created.
CREATE DATABASE kommun OWNER lagesbild;
CREATE DATABASE polisen OWNER lagesbild;
CREATE DATABASE ica OWNER lagesbild;
CREATE DATABASE vaktbolaget OWNER lagesbild;
